"""Catalog queries: which items a request selects, and their count, ids, extent, statistics.

A :class:`CatalogSelection` is an item query plus an optional geometry. Without a geometry
every answer is one store call (:class:`~livemosaic.core.ports.ItemStore` aggregates in SQL),
whatever the catalog size. With a geometry the store finds the candidates whose bounding box
meets the geometry's (an index lookup), their footprints are tested here with
:func:`~livemosaic.core.planar.intersects_footprint`, and the answer is computed by the store
over the OBJECTIDs that passed: a geometry costs in proportion to the items its bounding box
covers, not to the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from livemosaic.core.models import Extent, Geometry, RasterItem
from livemosaic.core.planar import intersects_footprint
from livemosaic.core.ports import FieldStatistic, ItemQuery, ItemStore


@dataclass(frozen=True, slots=True)
class CatalogSelection:
    """The items of a dataset matching ``query`` (its offset and limit are ignored) whose
    footprint touches ``geometry`` (in the dataset CRS) when one is given."""

    dataset: str
    query: ItemQuery
    geometry: Geometry | None = None


class CatalogSearch:
    """Answers catalog queries through an item store."""

    def __init__(self, items: ItemStore) -> None:
        self.items = items

    def _query(self, sel: CatalogSelection, offset: int = 0, limit: int | None = None) -> ItemQuery:
        """The store query of a selection: its filters, or the ids a geometry kept."""
        base = replace(sel.query, offset=max(offset, 0), limit=limit)
        geom = sel.geometry
        if geom is None:
            return base
        extent = geom.bbox if base.extent is None else base.extent.intersection(geom.bbox)
        if extent is None:
            return ItemQuery(object_ids=(), offset=base.offset, limit=limit)
        candidates = self.items.find_items(
            sel.dataset,
            replace(base, extent=extent, offset=0, limit=None, order_by=(), nearest_to=None),
        )
        ids = tuple(
            it.id
            for it in candidates
            if it.id is not None and intersects_footprint(geom, it.footprint)
        )
        return ItemQuery(
            object_ids=ids,
            order_by=base.order_by,
            nearest_to=base.nearest_to,
            nearest_ascending=base.nearest_ascending,
            offset=base.offset,
            limit=limit,
        )

    def count(self, sel: CatalogSelection) -> int:
        """How many items the selection holds."""
        return self.items.count_items(sel.dataset, self._query(sel))

    def find(
        self, sel: CatalogSelection, offset: int = 0, limit: int | None = None
    ) -> list[RasterItem]:
        """One page of the selected items, in the query's order."""
        return self.items.find_items(sel.dataset, self._query(sel, offset, limit))

    def ids(self, sel: CatalogSelection, offset: int = 0, limit: int | None = None) -> list[int]:
        """One page of the selected OBJECTIDs, in the query's order."""
        return self.items.item_ids(sel.dataset, self._query(sel, offset, limit))

    def extent(self, sel: CatalogSelection) -> tuple[Extent | None, int]:
        """The union of the selected items' extents, and how many there are."""
        query = self._query(sel)
        return self.items.item_extent(sel.dataset, query), self.items.count_items(
            sel.dataset, query
        )

    def statistics(
        self,
        sel: CatalogSelection,
        statistics: Sequence[FieldStatistic],
        group_by: Sequence[str] = (),
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """One page of rows of statistics, one row per group (see ``ItemStore``)."""
        query = self._query(sel, offset, limit)
        return self.items.item_statistics(sel.dataset, query, statistics, group_by)

    def distinct(
        self,
        sel: CatalogSelection,
        fields: Sequence[str],
        offset: int = 0,
        limit: int | None = None,
    ) -> list[tuple[Any, ...]]:
        """One page of the distinct combinations of ``fields`` among the selected items."""
        return self.items.distinct_values(sel.dataset, self._query(sel, offset, limit), fields)


__all__ = ["CatalogSearch", "CatalogSelection"]
