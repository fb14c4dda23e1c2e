"""The SQLite catalog store: datasets, items, summaries and history in one database file.

Items of all datasets share one table with an R*Tree over their bounding boxes and indexes on
time, path and every summary bound, so lookups cost O(log n + k) and the summary is updated
in the same transaction as each add or remove. Services and snapshots live in
:mod:`livemosaic.adapters.catalog.services`, which this class extends.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from livemosaic.adapters.catalog.aggregates import (
    distinct_of,
    extent_of,
    selects_everything,
    statistics_of,
)
from livemosaic.adapters.catalog.connection import ConnectionPool, now_ms
from livemosaic.adapters.catalog.item_writes import (
    add_items_in,
    delete_item_rows,
    group_by_path,
    record_history,
)
from livemosaic.adapters.catalog.rows import (
    dataset_from_row,
    dataset_not_found,
    item_from_row,
    load_dataset,
    write_dataset_update,
)
from livemosaic.adapters.catalog.services import ServiceTables
from livemosaic.adapters.catalog.sqlwhere import compile_where, item_query_sql, order_clause
from livemosaic.adapters.catalog.summary import SummaryDelta, apply_delta, read_summary
from livemosaic.core.models import (
    DatasetSummary,
    Extent,
    HistoryEntry,
    MosaicDataset,
    RasterItem,
)
from livemosaic.core.ports import AddResult, FieldStatistic, ItemQuery, RemoveFilter
from livemosaic.errors import AlreadyExists, InvalidParameter, ItemNotFound


class SqliteCatalog(ServiceTables):
    """A :class:`~livemosaic.core.ports.CatalogStore` in one SQLite file (WAL mode)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool = ConnectionPool(self.path, busy_timeout_ms)
        self.schema_version = self._pool.migrate()

    @property
    def pool(self) -> ConnectionPool:
        """The connection pool, shared with the job and user stores of the same database."""
        return self._pool

    # -- datasets ------------------------------------------------------------------------
    def _dataset(self, conn: sqlite3.Connection, name: str) -> MosaicDataset:
        return load_dataset(conn, name)

    def _ds_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM datasets WHERE name = ?", (name.strip(),)).fetchone()
        if row is None:
            raise dataset_not_found(name)
        return int(row[0])

    @staticmethod
    def _refuse_if_published(conn: sqlite3.Connection, ds: MosaicDataset, action: str) -> None:
        users = conn.execute(
            "SELECT folder, name FROM services WHERE dataset = ? ORDER BY folder, name",
            (ds.name,),
        ).fetchall()
        if users:
            names = ", ".join(f"{r['folder']}/{r['name']}".lstrip("/") for r in users)
            raise InvalidParameter(
                "dataset",
                f"mosaic dataset '{ds.name}' cannot be {action}: service(s) {names} publish it.",
                accepted="delete those services first (`livemosaic service delete NAME`)",
            )

    def create_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        """Create a dataset (AlreadyExists if the name is taken); returns it with its id."""
        name = dataset.name.strip()
        if not name:
            raise InvalidParameter("name", "a mosaic dataset needs a name.")
        with self._pool.write() as conn:
            row = conn.execute("SELECT name FROM datasets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                raise AlreadyExists(
                    f"Mosaic dataset '{row['name']}' exists already.",
                    next_step="Choose another name, or delete it with "
                    f"`livemosaic dataset delete {row['name']}`.",
                )
            created = now_ms()
            cur = conn.execute(
                "INSERT INTO datasets (name, crs, time_pattern, history_enabled, description, "
                "created, time_field, time_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    dataset.crs,
                    dataset.time_pattern,
                    int(dataset.history_enabled),
                    dataset.description,
                    created,
                    dataset.time_field,
                    dataset.time_format,
                ),
            )
            out = replace(dataset, name=name, id=cur.lastrowid, created=created)
            conn.execute("INSERT INTO summary (dataset_id) VALUES (?)", (out.id,))
            record_history(conn, out, "create", {"name": name, "crs": dataset.crs})
        return out

    def get_dataset(self, name: str) -> MosaicDataset:
        """The dataset with this name, case-insensitive (DatasetNotFound otherwise)."""
        with self._pool.read() as conn:
            return self._dataset(conn, name)

    def list_datasets(self) -> list[MosaicDataset]:
        """All datasets by name."""
        with self._pool.read() as conn:
            rows = conn.execute("SELECT * FROM datasets ORDER BY name").fetchall()
        return [dataset_from_row(r) for r in rows]

    def update_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        """Change settings of a dataset (crs only while it is empty); found by id or name."""
        with self._pool.write() as conn:
            if dataset.id is not None:
                row = conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset.id,)).fetchone()
                if row is None:
                    raise dataset_not_found(dataset.name)
                old = dataset_from_row(row)
            else:
                old = self._dataset(conn, dataset.name)
            new, changed = write_dataset_update(
                conn, old, dataset, lambda what: self._refuse_if_published(conn, old, what)
            )
            if changed:
                record_history(conn, new if new.history_enabled else old, "update", changed)
        return new

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset, its items, summary and history (never the files)."""
        with self._pool.write() as conn:
            ds = self._dataset(conn, name)
            self._refuse_if_published(conn, ds, "deleted")
            conn.execute("DELETE FROM items_rtree WHERE ds_min <= ?1 AND ds_max >= ?1", (ds.id,))
            for table in ("item_dims", "item_band_stats"):
                conn.execute(
                    f"DELETE FROM {table} WHERE item_id IN "
                    "(SELECT id FROM items WHERE dataset_id = ?)",
                    (ds.id,),
                )
            for table in (
                "items",
                "summary",
                "summary_counters",
                "summary_bands",
                "summary_variables",
                "summary_dimensions",
                "summary_dimension_values",
                "history",
                "ingest_journal",
            ):
                conn.execute(f"DELETE FROM {table} WHERE dataset_id = ?", (ds.id,))
            conn.execute("DELETE FROM datasets WHERE id = ?", (ds.id,))

    # -- items ---------------------------------------------------------------------------
    def file_state(self, dataset: str, path: str) -> tuple[int, int] | None:
        """(size, mtime_ns) recorded for a path in a dataset, or None when absent."""
        with self._pool.read() as conn:
            ds = self._ds_id(conn, dataset)
            row = conn.execute(
                "SELECT file_size, file_mtime_ns FROM items WHERE dataset_id = ? AND path = ? "
                "LIMIT 1",
                (ds, path),
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def add_items(self, dataset: str, items: Sequence[RasterItem]) -> AddResult:
        """Add items in one transaction, idempotent per (path, size, mtime)."""
        group_by_path(items)  # refuse a bad extent before taking the write lock
        with self._pool.write() as conn:
            return add_items_in(conn, self._dataset(conn, dataset), items)

    def remove_items(self, dataset: str, where: RemoveFilter) -> int:
        """Remove matching items in one transaction; returns how many."""
        f = where
        if f.object_ids is None and f.where is None and not f.path and f.older_than is None:
            raise InvalidParameter(
                "filter",
                "refusing to remove items without a filter.",
                accepted="object ids, a where clause, a path (or folder ending in '/'), "
                "or an older-than time",
            )
        conds: list[str] = ["i.dataset_id = ?"]
        params: list[Any] = []
        if f.object_ids is not None:
            conds.append("i.id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps([int(x) for x in f.object_ids]))
        if f.path:
            if f.path.endswith("/"):
                conds.append("i.path >= ? AND i.path < ?")
                params += [f.path, f.path[:-1] + "0"]  # "0" sorts right after "/"
            else:
                conds.append("i.path = ?")
                params.append(f.path)
        if f.older_than is not None:
            conds.append("i.time < ?")
            params.append(f.older_than)
        if f.where is not None:
            sql, where_params = compile_where(f.where)
            conds.append(sql)
            params += where_params
        with self._pool.write() as conn:
            ds = self._dataset(conn, dataset)
            assert ds.id is not None
            rows = conn.execute(
                "SELECT i.* FROM items AS i WHERE " + " AND ".join(conds), [ds.id, *params]
            ).fetchall()
            if not rows:
                return 0
            delta = SummaryDelta()
            for r in rows:
                delta.add(item_from_row(r), -1)
            delete_item_rows(conn, [r["id"] for r in rows])
            apply_delta(conn, ds.id, delta)
            filt = {
                "object_ids": len(f.object_ids) if f.object_ids is not None else None,
                "where": f.where is not None,
                "path": f.path,
                "older_than": f.older_than,
            }
            record_history(conn, ds, "remove", {"removed": len(rows), "filter": filt})
        return len(rows)

    def _select(self, conn: sqlite3.Connection, ds: int, query: ItemQuery) -> tuple[str, list[Any]]:
        max_duration = 0
        if query.time is not None and query.time[0] is not None:
            row = conn.execute(
                "SELECT MAX(duration) FROM items WHERE dataset_id = ?", (ds,)
            ).fetchone()
            max_duration = int(row[0] or 0)
        return item_query_sql(ds, query, max_duration)

    def _find_sql(
        self, conn: sqlite3.Connection, dataset: str, query: ItemQuery, columns: str = "i.*"
    ) -> tuple[str, list[Any]]:
        ds = self._ds_id(conn, dataset)
        from_where, params = self._select(conn, ds, query)
        limit = -1 if query.limit is None else max(int(query.limit), 0)
        order, order_params = order_clause(
            query.order_by, nearest_to=query.nearest_to, nearest_ascending=query.nearest_ascending
        )
        sql = f"SELECT {columns} {from_where} {order} LIMIT ? OFFSET ?"
        return sql, [*params, *order_params, limit, max(int(query.offset), 0)]

    def find_items(self, dataset: str, query: ItemQuery) -> list[RasterItem]:
        """Items matching a query: O(log n + k) through the spatial and time indexes."""
        with self._pool.read() as conn:
            sql, params = self._find_sql(conn, dataset, query)
            rows = conn.execute(sql, params).fetchall()
        return [item_from_row(r) for r in rows]

    def explain(self, dataset: str, query: ItemQuery) -> list[str]:
        """The SQLite query plan of ``find_items`` (one line per plan step)."""
        with self._pool.read() as conn:
            sql, params = self._find_sql(conn, dataset, query)
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return [str(r[3]) for r in rows]

    def count_items(self, dataset: str, query: ItemQuery) -> int:
        """How many items match (offset and limit ignored); O(1) without filters."""
        with self._pool.read() as conn:
            ds = self._ds_id(conn, dataset)
            if selects_everything(query):
                row = conn.execute(
                    "SELECT item_count FROM summary WHERE dataset_id = ?", (ds,)
                ).fetchone()
                return 0 if row is None else int(row[0])
            from_where, params = self._select(conn, ds, query)
            return int(conn.execute(f"SELECT count(*) {from_where}", params).fetchone()[0])

    def item_ids(self, dataset: str, query: ItemQuery) -> list[int]:
        """The OBJECTIDs ``find_items`` would return, in its order and page."""
        with self._pool.read() as conn:
            sql, params = self._find_sql(conn, dataset, query, "i.id")
            return [int(r[0]) for r in conn.execute(sql, params).fetchall()]

    def item_extent(self, dataset: str, query: ItemQuery) -> Extent | None:
        """The union of the matching items' extents: the summary's without filters, else
        MIN/MAX over the bounds columns of the matching rows."""
        with self._pool.read() as conn:
            ds = self._ds_id(conn, dataset)
            if selects_everything(query):  # the summary keeps it: O(1)
                row = conn.execute(
                    "SELECT item_count, xmin, ymin, xmax, ymax FROM summary WHERE dataset_id = ?",
                    (ds,),
                ).fetchone()
                return None if row is None or row[0] <= 0 else Extent(*map(float, row[1:]))
            from_where, params = self._select(conn, ds, query)
            return extent_of(conn, from_where, params)

    def item_statistics(
        self,
        dataset: str,
        query: ItemQuery,
        statistics: Sequence[FieldStatistic],
        group_by: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Grouped statistics of the matching items, aggregated in SQL."""
        with self._pool.read() as conn:
            from_where, params = self._select(conn, self._ds_id(conn, dataset), query)
            return statistics_of(
                conn, from_where, params, statistics, group_by, query.offset, query.limit
            )

    def distinct_values(
        self, dataset: str, query: ItemQuery, fields: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """Distinct combinations of fields among the matching items (SQL DISTINCT)."""
        with self._pool.read() as conn:
            from_where, params = self._select(conn, self._ds_id(conn, dataset), query)
            return distinct_of(
                conn, from_where, params, fields, query.order_by, query.offset, query.limit
            )

    def get_item(self, dataset: str, object_id: int) -> RasterItem:
        """One item (ItemNotFound otherwise)."""
        with self._pool.read() as conn:
            ds = self._ds_id(conn, dataset)
            row = conn.execute(
                "SELECT * FROM items WHERE id = ? AND dataset_id = ?", (int(object_id), ds)
            ).fetchone()
        if row is None:
            raise ItemNotFound(
                f"Item {object_id} does not exist in mosaic dataset '{dataset}'.",
                next_step="Query the catalog for valid OBJECTIDs.",
            )
        return item_from_row(row)

    def summary(self, dataset: str) -> DatasetSummary:
        """The current dataset summary, O(1) in the number of items."""
        with self._pool.read() as conn:
            return read_summary(conn, self._ds_id(conn, dataset))

    def history(self, dataset: str, limit: int = 100) -> list[HistoryEntry]:
        """Most recent geoprocessing-history entries first."""
        with self._pool.read() as conn:
            ds = self._ds_id(conn, dataset)
            rows = conn.execute(
                "SELECT time, operation, details FROM history WHERE dataset_id = ? "
                "ORDER BY id DESC LIMIT ?",
                (ds, max(int(limit), 0)),
            ).fetchall()
        return [HistoryEntry(r[0], r[1], json.loads(r[2])) for r in rows]

    def close(self) -> None:
        """Release connections."""
        self._pool.close()
