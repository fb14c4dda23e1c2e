"""The ingest journal in PostgreSQL (table ``ingest_journal``), shared by every watcher.

Rows mean what they mean in SQLite (:mod:`livemosaic.adapters.catalog.journal`): :meth:`commit`
adds a batch's items and writes its rows in one transaction (one unit of work), under the
catalog write lock, adding nothing for a file whose (path, size, mtime) is already in the
catalog. Several watchers over the same folders (on several nodes) never take the same file
twice: :meth:`PostgresIngestJournal.batch` is the ingest pipeline's ``batch_lock``, an advisory
lock per dataset held for a whole batch, so the second watcher finds the file settled in the
journal and does not read it; should a batch run without it, the commit still adds a file's
items once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from livemosaic.adapters.catalog.journal import write_entries
from livemosaic.adapters.catalog.postgres.catalog import PostgresCatalog
from livemosaic.adapters.catalog.postgres.connection import BATCH_LOCK, PgConnection, as_dbapi
from livemosaic.adapters.catalog.postgres.reads import ItemReads
from livemosaic.core.models import RasterItem
from livemosaic.core.ports import AddResult, JournalEntry, JournalState

_SELECT = (
    "SELECT d.name AS dataset, j.* FROM ingest_journal AS j "
    "JOIN datasets AS d ON d.id = j.dataset_id"
)


def _dataset_id(conn: PgConnection, name: str) -> int:
    oid = ItemReads.dataset_in(conn, name).id
    assert oid is not None
    return oid


def _entry(row: Any) -> JournalEntry:
    return JournalEntry(
        dataset=str(row["dataset"]),
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


class PostgresIngestJournal:
    """An :class:`~livemosaic.core.ports.IngestJournal` in the catalog's database."""

    def __init__(self, catalog: PostgresCatalog) -> None:
        self.catalog = catalog
        self._pool = catalog.pg

    @contextmanager
    def batch(self, dataset: str) -> Iterator[None]:
        """Hold one dataset's ingest batches to one process at a time, on every node.

        A session-level advisory lock on the dataset's name: a second watcher's batch waits,
        then finds the files the first one took settled in the journal and reads none of them
        again. The lock goes with its connection, so a watcher that dies releases it.
        """
        key = (BATCH_LOCK, dataset.strip().lower())
        with self._pool.session() as conn:
            conn.execute("SELECT pg_advisory_lock(?, hashtext(?))", key)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(?, hashtext(?))", key)

    def lookup(self, dataset: str, paths: Sequence[str]) -> dict[str, JournalEntry]:
        """The entries of these paths in a dataset (absent paths are left out)."""
        if not paths:
            return {}
        with self._pool.read() as conn:
            ds = _dataset_id(conn, dataset)
            rows = conn.execute(
                f"{_SELECT} WHERE j.dataset_id = ? AND j.path = ANY(?)", (ds, list(paths))
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
                write_entries(
                    as_dbapi(conn), ds, [e for e in entries if e.dataset.casefold() == key]
                )

    def commit(
        self, dataset: str, items: Sequence[RasterItem], entries: Sequence[JournalEntry]
    ) -> AddResult:
        """Add items (idempotent per path, size, mtime) and write entries in one transaction."""
        with self._pool.write() as conn:
            ds = self.catalog.dataset_in(conn, dataset)
            assert ds.id is not None
            result = self.catalog.add_items_in(conn, ds, items)
            if entries:
                write_entries(as_dbapi(conn), ds.id, entries)
        return result

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
            params.append(None if limit is None else max(int(limit), 0))
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
                conds.append("path = ANY(?)")
                params.append(list(paths))
            where = f" WHERE {' AND '.join(conds)}" if conds else ""
            cur = conn.execute(f"DELETE FROM ingest_journal{where}", params)
        return int(cur.rowcount)


__all__ = ["PostgresIngestJournal"]
