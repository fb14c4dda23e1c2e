"""The PostgreSQL catalog store: datasets, items, summaries and history in one database.

It keeps the SQLite store's rules and shares its code where the SQL is the same: the row
forms (:mod:`..rows`), the incremental summary (:mod:`..summary`, written in the same
transaction as each add and remove), services and snapshots (:mod:`..services`), the
where-clause walk. What differs is here: identity columns, arrays for id lists and the GiST
index over (dataset, bounding box, time range) in place of the R*Tree. Catalog writes are
serialised across nodes by an advisory lock (:mod:`.connection`), so adds stay idempotent per
(path, size, mtime) with several writers; the ingest journal
(:mod:`.journal`) runs :meth:`PostgresCatalog.add_items_in` and writes its rows in the same
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from livemosaic.adapters.catalog.connection import ConnectionPool, now_ms
from livemosaic.adapters.catalog.item_writes import add_details
from livemosaic.adapters.catalog.postgres.connection import PgConnection, PgPool, as_dbapi
from livemosaic.adapters.catalog.postgres.query import POSTGRES
from livemosaic.adapters.catalog.postgres.reads import (
    ItemReads,
    dataset_from_row,
    dataset_not_found,
)
from livemosaic.adapters.catalog.rows import (
    ITEM_COLUMNS,
    band_stat_rows,
    dimension_rows,
    item_from_row,
    item_row,
    write_dataset_update,
)
from livemosaic.adapters.catalog.services import ServiceTables
from livemosaic.adapters.catalog.sqlwhere import compile_where
from livemosaic.adapters.catalog.summary import SummaryDelta, apply_delta
from livemosaic.core.models import (
    MosaicDataset,
    RasterItem,
)
from livemosaic.core.ports import AddResult, RemoveFilter
from livemosaic.errors import (
    AlreadyExists,
    InvalidParameter,
    RasterRejected,
)

INSERT_ITEM = (
    f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in ITEM_COLUMNS)}) RETURNING id"
)
_DATASET_TABLES = (
    "items",
    "summary",
    "summary_counters",
    "summary_bands",
    "summary_variables",
    "summary_dimensions",
    "summary_dimension_values",
    "history",
    "ingest_journal",
)


def _delete_items(conn: PgConnection, ids: Sequence[int]) -> None:
    """Delete items and their index rows (the summary is the caller's job)."""
    id_list = [int(i) for i in ids]
    conn.execute("DELETE FROM item_dims WHERE item_id = ANY(?)", (id_list,))
    conn.execute("DELETE FROM item_band_stats WHERE item_id = ANY(?)", (id_list,))
    conn.execute("DELETE FROM items WHERE id = ANY(?)", (id_list,))


class PostgresCatalog(ItemReads, ServiceTables):
    """A :class:`~livemosaic.core.ports.CatalogStore` in a PostgreSQL database."""

    def __init__(self, pool: PgPool) -> None:
        self.pg = pool
        self._pool = cast(ConnectionPool, pool)  # for the shared service tables
        self.schema_version = pool.migrate()

    @property
    def pool(self) -> PgPool:
        """The connection pool, shared with the job, user and sign-in stores."""
        return self.pg

    # -- datasets ------------------------------------------------------------------------
    @staticmethod
    def _record(
        conn: PgConnection, ds: MosaicDataset, operation: str, details: dict[str, Any]
    ) -> None:
        if ds.history_enabled:
            conn.execute(
                "INSERT INTO history (dataset_id, time, operation, details) VALUES (?, ?, ?, ?)",
                (ds.id, now_ms(), operation, json.dumps(details)),
            )

    @staticmethod
    def _refuse_if_published(conn: PgConnection, ds: MosaicDataset, action: str) -> None:
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
        with self.pg.write() as conn:
            row = conn.execute("SELECT name FROM datasets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                raise AlreadyExists(
                    f"Mosaic dataset '{row['name']}' exists already.",
                    next_step="Choose another name, or delete it with "
                    f"`livemosaic dataset delete {row['name']}`.",
                )
            created = now_ms()
            new = conn.execute(
                "INSERT INTO datasets (name, crs, time_pattern, history_enabled, description, "
                "created, time_field, time_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
            ).fetchone()
            assert new is not None
            out = replace(dataset, name=name, id=int(new[0]), created=created)
            conn.execute("INSERT INTO summary (dataset_id) VALUES (?)", (out.id,))
            self._record(conn, out, "create", {"name": name, "crs": dataset.crs})
        return out

    def get_dataset(self, name: str) -> MosaicDataset:
        """The dataset with this name, case-insensitive (DatasetNotFound otherwise)."""
        with self.pg.read() as conn:
            return self.dataset_in(conn, name)

    def list_datasets(self) -> list[MosaicDataset]:
        """All datasets by name."""
        with self.pg.read() as conn:
            rows = conn.execute("SELECT * FROM datasets ORDER BY name").fetchall()
        return [dataset_from_row(r) for r in rows]

    def update_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        """Change settings of a dataset (crs only while it is empty); found by id or name."""
        with self.pg.write() as conn:
            if dataset.id is not None:
                row = conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset.id,)).fetchone()
                if row is None:
                    raise dataset_not_found(dataset.name)
                old = dataset_from_row(row)
            else:
                old = self.dataset_in(conn, dataset.name)
            new, changed = write_dataset_update(
                conn, old, dataset, lambda what: self._refuse_if_published(conn, old, what)
            )
            if changed:
                self._record(conn, new if new.history_enabled else old, "update", changed)
        return new

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset, its items, summary, history and journal (never the files)."""
        with self.pg.write() as conn:
            ds = self.dataset_in(conn, name)
            self._refuse_if_published(conn, ds, "deleted")
            for table in ("item_dims", "item_band_stats"):
                conn.execute(
                    f"DELETE FROM {table} WHERE item_id IN "
                    "(SELECT id FROM items WHERE dataset_id = ?)",
                    (ds.id,),
                )
            for table in _DATASET_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE dataset_id = ?", (ds.id,))
            conn.execute("DELETE FROM datasets WHERE id = ?", (ds.id,))

    # -- items ---------------------------------------------------------------------------
    def file_state(self, dataset: str, path: str) -> tuple[int, int] | None:
        """(size, mtime_ns) recorded for a path in a dataset, or None when absent."""
        with self.pg.read() as conn:
            ds = self._ds_id(conn, dataset)
            row = conn.execute(
                "SELECT file_size, file_mtime_ns FROM items WHERE dataset_id = ? AND path = ? "
                "LIMIT 1",
                (ds, path),
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def add_items(self, dataset: str, items: Sequence[RasterItem]) -> AddResult:
        """Add items in one transaction, idempotent per (path, size, mtime)."""
        with self.pg.write() as conn:
            return self.add_items_in(conn, self.dataset_in(conn, dataset), items)

    def add_items_in(
        self, conn: PgConnection, ds: MosaicDataset, items: Sequence[RasterItem]
    ) -> AddResult:
        """Add items in the caller's write transaction (the ingest journal writes its rows in
        the same one), idempotent per (path, size, mtime); the summary and history follow."""
        assert ds.id is not None
        by_path: dict[str, list[RasterItem]] = {}
        for item in items:
            if not item.extent.is_valid():
                raise RasterRejected(
                    item.path,
                    f"its extent {item.extent} is not a valid rectangle.",
                    next_step="Check the file's georeferencing.",
                )
            by_path.setdefault(item.path, []).append(item)
        new: list[RasterItem] = []
        skipped: list[str] = []
        replaced: list[str] = []
        delta = SummaryDelta()
        date_added = now_ms()
        old_rows: dict[str, list[Any]] = {}
        if by_path:
            for r in conn.execute(
                "SELECT * FROM items WHERE dataset_id = ? AND path = ANY(?)",
                (ds.id, list(by_path)),
            ).fetchall():
                old_rows.setdefault(r["path"], []).append(r)
        for path, group in by_path.items():
            old = old_rows.get(path, [])
            if old:
                first = group[0]
                state = (first.file_size, first.file_mtime_ns)
                if all((r["file_size"], r["file_mtime_ns"]) == state for r in old):
                    skipped.append(path)
                    continue
                for r in old:
                    delta.add(item_from_row(r), -1)
                _delete_items(conn, [r["id"] for r in old])
                replaced.append(path)
            for item in group:
                new.append(item)
                delta.add(item, 1)
        added = self._insert(conn, ds.id, new, date_added)
        if not delta.empty:
            apply_delta(as_dbapi(conn), ds.id, delta)
            self._record(conn, ds, "add", add_details(by_path, added, skipped, replaced))
        return AddResult(tuple(added), tuple(skipped), tuple(replaced))

    @staticmethod
    def _insert(conn: PgConnection, ds: int, items: Sequence[RasterItem], added: int) -> list[int]:
        """Insert items and their index rows in a few pipelined round trips; their ids."""
        ids = conn.insert_returning(INSERT_ITEM, [item_row(item, ds, added) for item in items])
        dims = [
            row for item, oid in zip(items, ids, strict=True) for row in dimension_rows(item, oid)
        ]
        stats = [
            row
            for item, oid in zip(items, ids, strict=True)
            for row in band_stat_rows(item, oid, ds)
        ]
        conn.executemany("INSERT INTO item_dims VALUES (?, ?, ?)", dims)
        conn.executemany("INSERT INTO item_band_stats VALUES (?, ?, ?, ?, ?, ?)", stats)
        return ids

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
            conds.append("i.id = ANY(?)")
            params.append([int(x) for x in f.object_ids])
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
            sql, where_params = compile_where(f.where, dialect=POSTGRES)
            conds.append(sql)
            params += where_params
        with self.pg.write() as conn:
            ds = self.dataset_in(conn, dataset)
            assert ds.id is not None
            rows = conn.execute(
                "SELECT i.* FROM items AS i WHERE " + " AND ".join(conds), [ds.id, *params]
            ).fetchall()
            if not rows:
                return 0
            delta = SummaryDelta()
            for r in rows:
                delta.add(item_from_row(r), -1)
            _delete_items(conn, [r["id"] for r in rows])
            apply_delta(as_dbapi(conn), ds.id, delta)
            filt = {
                "object_ids": len(f.object_ids) if f.object_ids is not None else None,
                "where": f.where is not None,
                "path": f.path,
                "older_than": f.older_than,
            }
            self._record(conn, ds, "remove", {"removed": len(rows), "filter": filt})
        return len(rows)

    def close(self) -> None:
        """Release connections."""
        self.pg.close()
