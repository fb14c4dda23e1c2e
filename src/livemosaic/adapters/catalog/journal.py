"""The ingest journal in the SQLite catalog database (table ``ingest_journal``).

Each row says which version (size, mtime) of a file a dataset has seen and what became of it:
``pending`` (taken, not finished), ``added`` or ``quarantined`` (with the reason). The rows of
a batch's added files are written by :meth:`SqliteCatalog.add_items` in the same transaction
as their items (:func:`write_entries` is called inside it), which is what makes ingest
exactly-once across crashes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from livemosaic.adapters.catalog.connection import now_ms
from livemosaic.core.models import RasterItem
from livemosaic.core.ports import (
    AddResult,
    CatalogStore,
    IngestJournal,
    JournalEntry,
    JournalState,
)
from livemosaic.errors import DatasetNotFound, NotSupported

if TYPE_CHECKING:
    from livemosaic.adapters.catalog.sqlite import SqliteCatalog

_UPSERT = (
    "INSERT INTO ingest_journal (dataset_id, path, size, mtime_ns, state, reason, item_count, "
    "moved_to, first_seen, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (dataset_id, path) DO UPDATE SET size = excluded.size, "
    "mtime_ns = excluded.mtime_ns, state = excluded.state, reason = excluded.reason, "
    "item_count = excluded.item_count, moved_to = excluded.moved_to, updated = excluded.updated"
)
_SELECT = (
    "SELECT d.name AS dataset, j.* FROM ingest_journal AS j "
    "JOIN datasets AS d ON d.id = j.dataset_id"
)


def _dataset_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM datasets WHERE name = ?", (name.strip(),)).fetchone()
    if row is None:
        raise DatasetNotFound(
            f"Mosaic dataset '{name}' does not exist.",
            next_step=f"Create it with `livemosaic dataset create {name}`.",
        )
    return int(row[0])


def write_entries(
    conn: sqlite3.Connection, dataset_id: int, entries: Sequence[JournalEntry]
) -> None:
    """Upsert journal rows inside the caller's transaction (first_seen is kept)."""
    now = now_ms()
    conn.executemany(
        _UPSERT,
        [
            (
                dataset_id,
                e.path,
                e.size,
                e.mtime_ns,
                e.state,
                e.reason,
                e.item_count,
                e.moved_to,
                e.first_seen or now,
                e.updated or now,
            )
            for e in entries
        ],
    )


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        dataset=row["dataset"],
        path=row["path"],
        size=int(row["size"]),
        mtime_ns=int(row["mtime_ns"]),
        state=cast(JournalState, row["state"]),
        reason=row["reason"],
        item_count=int(row["item_count"]),
        moved_to=row["moved_to"],
        first_seen=int(row["first_seen"]),
        updated=int(row["updated"]),
    )


class SqliteIngestJournal:
    """An :class:`~livemosaic.core.ports.IngestJournal` sharing the catalog's connections."""

    def __init__(self, catalog: SqliteCatalog) -> None:
        self.catalog = catalog
        self._pool = catalog.pool

    def lookup(self, dataset: str, paths: Sequence[str]) -> dict[str, JournalEntry]:
        """The entries of these paths in a dataset (absent paths are left out)."""
        if not paths:
            return {}
        with self._pool.read() as conn:
            ds = _dataset_id(conn, dataset)
            rows = conn.execute(
                f"{_SELECT} WHERE j.dataset_id = ? AND j.path IN (SELECT value FROM json_each(?))",
                (ds, json.dumps(list(paths))),
            ).fetchall()
        return {r["path"]: _entry(r) for r in rows}

    def record(self, entries: Sequence[JournalEntry]) -> None:
        """Insert or replace entries in one transaction (first_seen is kept)."""
        if not entries:
            return
        with self._pool.write() as conn:
            ids: dict[str, int] = {}
            for e in entries:
                key = e.dataset.casefold()
                if key not in ids:
                    ids[key] = _dataset_id(conn, e.dataset)
            for key, ds in ids.items():
                write_entries(conn, ds, [e for e in entries if e.dataset.casefold() == key])

    def commit(
        self, dataset: str, items: Sequence[RasterItem], entries: Sequence[JournalEntry]
    ) -> AddResult:
        """Add items (idempotent per path, size, mtime) and write entries in one transaction."""
        return self.catalog.add_items(dataset, items, journal=entries)

    def entries(
        self,
        dataset: str | None = None,
        state: JournalState | None = None,
        *,
        under: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries by dataset then path; ``under`` keeps paths inside a folder."""
        conds: list[str] = []
        params: list[Any] = []
        with self._pool.read() as conn:
            if dataset is not None:
                conds.append("j.dataset_id = ?")
                params.append(_dataset_id(conn, dataset))
            if state is not None:
                conds.append("j.state = ?")
                params.append(state)
            if under:
                prefix = under.rstrip("/") + "/"
                conds.append("j.path >= ? AND j.path < ?")
                params += [prefix, prefix[:-1] + "0"]  # "0" sorts right after "/"
            where = f" WHERE {' AND '.join(conds)}" if conds else ""
            params.append(-1 if limit is None else max(int(limit), 0))
            rows = conn.execute(
                f"{_SELECT}{where} ORDER BY d.name, j.path LIMIT ?", params
            ).fetchall()
        return [_entry(r) for r in rows]

    def forget(
        self,
        dataset: str | None = None,
        *,
        state: JournalState | None = None,
        paths: Sequence[str] | None = None,
    ) -> int:
        """Delete matching entries; returns how many."""
        conds: list[str] = []
        params: list[Any] = []
        with self._pool.write() as conn:
            if dataset is not None:
                conds.append("dataset_id = ?")
                params.append(_dataset_id(conn, dataset))
            if state is not None:
                conds.append("state = ?")
                params.append(state)
            if paths is not None:
                conds.append("path IN (SELECT value FROM json_each(?))")
                params.append(json.dumps(list(paths)))
            where = f" WHERE {' AND '.join(conds)}" if conds else ""
            cur = conn.execute(f"DELETE FROM ingest_journal{where}", params)
        return int(cur.rowcount)


def open_journal(catalog: CatalogStore) -> IngestJournal:
    """The ingest journal of a catalog store's database."""
    from livemosaic.adapters.catalog.sqlite import SqliteCatalog

    if isinstance(catalog, SqliteCatalog):
        return SqliteIngestJournal(catalog)
    try:
        from livemosaic.adapters.catalog.postgres import PostgresCatalog, PostgresIngestJournal
    except ImportError:  # without psycopg there is no PostgreSQL catalog
        pass
    else:
        if isinstance(catalog, PostgresCatalog):
            return PostgresIngestJournal(catalog)
    raise NotSupported(
        f"The ingest journal is not available for {type(catalog).__name__} catalogs.",
        next_step="Use an SQLite or PostgreSQL catalog (LIVEMOSAIC_CATALOG_URL) for watching.",
    )


__all__ = ["SqliteIngestJournal", "open_journal", "write_entries"]
