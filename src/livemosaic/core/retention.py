"""Retention: which items a dataset keeps (by acquisition time, count, or age in the catalog).

Applied by the ingest pipeline after each batch and at every rescan, so items age out even
when no new file arrives. Each limit is one indexed removal in the catalog.
"""

from __future__ import annotations

from livemosaic.core.ports import ItemQuery, ItemStore, RemoveFilter
from livemosaic.core.watch_rules import DAY_MS, Retention
from livemosaic.core.where_ast import Compare, Field, Literal_

PAGE = 500  # items looked up per round when enforcing keep_last


def apply_retention(catalog: ItemStore, dataset: str, retention: Retention, now: int) -> int:
    """Remove the items a retention policy no longer keeps; returns how many.

    ``keep_days`` counts back from the newest item's acquisition time; ``max_age_days`` from
    ``now`` by date added; ``keep_last`` keeps the newest items by acquisition time (items
    without a time count as oldest), then by OBJECTID.
    """
    removed = 0
    if retention.keep_days is not None:
        extent = catalog.summary(dataset).time_extent
        if extent is not None:
            cutoff = extent[1] - int(retention.keep_days * DAY_MS)
            removed += catalog.remove_items(dataset, RemoveFilter(older_than=cutoff))
    if retention.max_age_days is not None:
        cutoff = now - int(retention.max_age_days * DAY_MS)
        older = Compare("<", Field("DateAdded"), Literal_(cutoff))
        removed += catalog.remove_items(dataset, RemoveFilter(where=older))
    if retention.keep_last is not None:
        order = (("StdTime", False), ("OBJECTID", False))
        while True:
            query = ItemQuery(order_by=order, offset=retention.keep_last, limit=PAGE)
            extra = [i.id for i in catalog.find_items(dataset, query) if i.id is not None]
            if not extra:
                break
            removed += catalog.remove_items(dataset, RemoveFilter(object_ids=tuple(extra)))
    return removed


__all__ = ["apply_retention"]
