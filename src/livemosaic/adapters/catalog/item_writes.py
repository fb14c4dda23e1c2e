"""Item writes inside a catalog transaction, shared by the item store and the ingest journal.

:func:`add_items_in` is the body of every add: the item store runs it alone, the ingest
journal runs it with its journal rows in the same transaction (exactly-once ingest).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from livemosaic.adapters.catalog.connection import now_ms
from livemosaic.adapters.catalog.rows import (
    INSERT_ITEM,
    INSERT_RTREE,
    band_stat_rows,
    dimension_rows,
    item_from_row,
    item_row,
    rtree_row,
)
from livemosaic.adapters.catalog.summary import SummaryDelta, apply_delta
from livemosaic.core.models import MosaicDataset, RasterItem
from livemosaic.core.ports import AddResult
from livemosaic.errors import RasterRejected

HISTORY_PATHS = 20  # paths listed in one history entry


def record_history(
    conn: sqlite3.Connection, ds: MosaicDataset, operation: str, details: dict[str, Any]
) -> None:
    """Add a history entry for a dataset that keeps history."""
    if ds.history_enabled:
        conn.execute(
            "INSERT INTO history (dataset_id, time, operation, details) VALUES (?, ?, ?, ?)",
            (ds.id, now_ms(), operation, json.dumps(details)),
        )


def delete_item_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Delete items and their index rows (the summary is the caller's job)."""
    ids_json = json.dumps(list(ids))
    for table, key in (
        ("items_rtree", "id"),
        ("item_dims", "item_id"),
        ("item_band_stats", "item_id"),
        ("items", "id"),
    ):
        conn.execute(
            f"DELETE FROM {table} WHERE {key} IN (SELECT value FROM json_each(?))", (ids_json,)
        )


def _insert(conn: sqlite3.Connection, ds: int, item: RasterItem, added: int) -> int:
    oid = conn.execute(INSERT_ITEM, item_row(item, ds, added)).lastrowid
    assert oid is not None
    conn.execute(INSERT_RTREE, rtree_row(oid, item, ds))
    conn.executemany("INSERT INTO item_dims VALUES (?, ?, ?)", dimension_rows(item, oid))
    conn.executemany(
        "INSERT INTO item_band_stats VALUES (?, ?, ?, ?, ?, ?)", band_stat_rows(item, oid, ds)
    )
    return oid


def group_by_path(items: Sequence[RasterItem]) -> dict[str, list[RasterItem]]:
    """Items by path, in order; RasterRejected for an extent that is not a rectangle."""
    by_path: dict[str, list[RasterItem]] = {}
    for item in items:
        if not item.extent.is_valid():
            raise RasterRejected(
                item.path,
                f"its extent {item.extent} is not a valid rectangle.",
                next_step="Check the file's georeferencing.",
            )
        by_path.setdefault(item.path, []).append(item)
    return by_path


def add_items_in(
    conn: sqlite3.Connection, ds: MosaicDataset, items: Sequence[RasterItem]
) -> AddResult:
    """Add items in the caller's write transaction, idempotent per (path, size, mtime).

    Keeps the summary current and records a history entry when anything changed.
    """
    assert ds.id is not None
    by_path = group_by_path(items)
    added: list[int] = []
    skipped: list[str] = []
    replaced: list[str] = []
    delta = SummaryDelta()
    date_added = now_ms()
    for path, group in by_path.items():
        old = conn.execute(
            "SELECT * FROM items WHERE dataset_id = ? AND path = ?", (ds.id, path)
        ).fetchall()
        if old:
            first = group[0]
            state = (first.file_size, first.file_mtime_ns)
            if all((r["file_size"], r["file_mtime_ns"]) == state for r in old):
                skipped.append(path)
                continue
            for r in old:
                delta.add(item_from_row(r), -1)
            delete_item_rows(conn, [r["id"] for r in old])
            replaced.append(path)
        for item in group:
            oid = _insert(conn, ds.id, item, date_added)
            delta.add(item, 1)
            added.append(oid)
    if not delta.empty:
        apply_delta(conn, ds.id, delta)
        record_history(conn, ds, "add", add_details(by_path, added, skipped, replaced))
    return AddResult(tuple(added), tuple(skipped), tuple(replaced))


def add_details(
    paths: Iterable[str], added: Sequence[int], skipped: Sequence[str], replaced: Sequence[str]
) -> dict[str, Any]:
    """What the history entry of an add records (every catalog store writes the same)."""
    listed = list(paths)
    return {
        "added": len(added),
        "skipped": len(skipped),
        "replaced": len(replaced),
        "path_count": len(listed),
        "paths": listed[:HISTORY_PATHS],
    }


__all__ = [
    "HISTORY_PATHS",
    "add_details",
    "add_items_in",
    "delete_item_rows",
    "group_by_path",
    "record_history",
]
