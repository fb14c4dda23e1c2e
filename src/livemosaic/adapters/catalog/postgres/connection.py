"""PostgreSQL connections for the catalog: a psycopg 3 pool, transactions, migrations.

Readers run in a ``REPEATABLE READ READ ONLY`` transaction, so every statement of one read sees
the same committed state (as an SQLite WAL read does). Writers take a transaction-level
advisory lock first, so catalog writes are serialised across every node as SQLite's
``BEGIN IMMEDIATE`` serialises them across processes: the summary, idempotent adds and the
snapshot versions stay exact. The job queue writes without that lock (row locks and
``SKIP LOCKED`` instead), so claiming a job never waits for an ingest.

:class:`PgConnection` offers the DB-API surface the SQLite helpers use (``?``, ``?N`` and
``:name`` parameters; rows addressable by index and by column name), so the summary, service,
user and sign-in code is shared by both stores instead of being written twice.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from typing import Any, cast

import psycopg
import psycopg_pool
from psycopg.rows import RowMaker

from livemosaic.adapters.catalog.connection import MIGRATION_NAME, now_ms
from livemosaic.errors import InvalidParameter, LimitExceeded, LiveMosaicError, StoreError
from livemosaic.settings import redact_url

log = logging.getLogger("livemosaic.catalog")

LOCK_SPACE = 0x4C4D  # first key of every livemosaic advisory lock ("LM")
CATALOG_LOCK = 1  # serialises catalog writes (datasets, items, services, users, journal)
MIGRATION_LOCK = 2  # one node at a time applies migrations
BATCH_LOCK = LOCK_SPACE * 16 + 4  # with a dataset name's hash: one ingest batch at a time
POOL_MAX_CONNECTIONS = 8  # per server process; PostgreSQL allows 100 by default
POOL_TIMEOUT_SECONDS = 30.0  # longest wait for a free connection, and for the first one

_TOKEN = re.compile(r"'(?:[^']|'')*'|\?(\d*)|(?<![:\w]):([A-Za-z_]\w*)|%")


class Row(tuple[Any, ...]):
    """A result row addressable by position and by column name (like ``sqlite3.Row``)."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        """A row of ``values`` whose column ``name`` is at ``index[name]``."""
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The column names."""
        return list(self._index)


def row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    """psycopg row factory making :class:`Row` objects."""
    names = [c.name for c in cursor.description or ()]
    index = {n: i for i, n in enumerate(names)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """SQLite parameter marks (``?``, ``?N``, ``:name``) as psycopg named placeholders.

    ``?`` becomes ``%(pK)s`` numbered left to right, ``?N`` ``%(pN)s`` and ``:name``
    ``%(name)s``; ``%`` is escaped and quoted strings and ``::`` casts are left alone.
    """
    counter = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal counter
        text = m.group(0)
        if text.startswith("'"):
            return text
        if text == "%":
            return "%%"
        if m.group(2) is not None:
            return f"%({m.group(2)})s"
        if m.group(1):
            return f"%(p{m.group(1)})s"
        counter += 1
        return f"%(p{counter})s"

    return _TOKEN.sub(repl, sql)


def bind(params: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for :func:`to_pyformat` SQL: mappings as they are, sequences as p1, p2, …"""
    if isinstance(params, Mapping):
        return dict(params)
    return {f"p{i}": v for i, v in enumerate(params, start=1)}


class PgConnection:
    """A connection inside one transaction, with the SQLite helpers' calling conventions."""

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.raw = conn

    def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> psycopg.Cursor[Any]:
        """Run one statement; ``?``/``?N``/``:name`` parameters; rows are :class:`Row`."""
        return self.raw.execute(to_pyformat(sql), bind(params))

    def executemany(
        self, sql: str, seq: Iterable[Sequence[Any] | Mapping[str, Any]]
    ) -> psycopg.Cursor[Any]:
        """Run one statement for every parameter set (pipelined by psycopg)."""
        cur = self.raw.cursor()
        rows = [bind(p) for p in seq]
        if rows:
            cur.executemany(to_pyformat(sql), rows)
        return cur

    def insert_returning(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Run an ``INSERT … RETURNING id`` for every row (pipelined); the ids in order."""
        if not rows:
            return []
        cur = self.raw.cursor()
        cur.executemany(to_pyformat(sql), [bind(r) for r in rows], returning=True)
        ids: list[int] = []
        while True:
            row = cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cur.nextset():
                return ids

    def script(self, sql: str) -> None:
        """Run a parameterless script of several statements (migrations)."""
        self.raw.execute(sql.encode("utf-8"))


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """psycopg exceptions as StoreError (or InvalidParameter for values of the wrong type)."""
    try:
        yield
    except LiveMosaicError:
        raise
    except psycopg.errors.NumericValueOutOfRange as exc:
        raise LimitExceeded(
            f"A number is beyond what the catalog stores (64-bit integers, ±{2**63 - 1}).",
            next_step="Nothing was changed; use smaller numbers (or check the raster's metadata).",
        ) from exc
    except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidTextRepresentation) as exc:
        raise InvalidParameter(
            "where",
            f"a value does not suit its field: {str(exc).splitlines()[0]}.",
            accepted="numbers for numeric fields, quoted text for text fields",
        ) from exc
    except psycopg_pool.PoolTimeout as exc:
        log.warning("catalog database %s: %s", where, exc)
        raise StoreError(
            "The catalog database gave no connection in time.",
            next_step="Check that PostgreSQL is running and reachable (the server log names "
            "it); retry when it is.",
        ) from exc
    except psycopg.OperationalError as exc:
        log.warning("catalog database %s: %s", where, exc)
        raise StoreError(
            f"The catalog database failed: {str(exc).splitlines()[0] if str(exc) else exc!r}.",
            next_step="Check that PostgreSQL is running and reachable (the server log names "
            "it); retry when it is.",
        ) from exc
    except psycopg.Error as exc:
        log.warning("catalog database %s: %s", where, exc)
        raise StoreError(
            f"The catalog database failed: {str(exc).splitlines()[0]}.",
            next_step="Nothing was changed; check the server log and retry.",
        ) from exc


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL text) of every packaged PostgreSQL migration, in order."""
    folder = resources.files("livemosaic.adapters.catalog.postgres").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        m = MIGRATION_NAME.match(entry.name)
        if m is not None:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _check_reachable(url: str) -> None:
    """Connect once, so a wrong URL fails now with PostgreSQL's own reason."""
    try:
        psycopg.connect(url, connect_timeout=int(POOL_TIMEOUT_SECONDS)).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        hint = "Check LIVEMOSAIC_CATALOG_URL and that PostgreSQL is running."
        if "does not exist" in reason and "database" in reason:
            hint = "Create the database first (createdb NAME), then run `livemosaic init`."
        raise StoreError(
            f"The catalog database {redact_url(url)} cannot be opened: {reason}",
            next_step=hint,
        ) from exc


def as_dbapi(conn: PgConnection) -> sqlite3.Connection:
    """The connection as the helpers shared with the SQLite store type it: they use only the
    DB-API surface :class:`PgConnection` offers."""
    return cast(sqlite3.Connection, conn)


class PgPool:
    """A pool of connections to one PostgreSQL database."""

    def __init__(self, url: str, max_size: int = POOL_MAX_CONNECTIONS) -> None:
        self.url = url
        self.where = redact_url(url)
        _check_reachable(url)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]] = (
            psycopg_pool.ConnectionPool(
                url,
                min_size=1,
                max_size=max_size,
                timeout=POOL_TIMEOUT_SECONDS,
                kwargs={"autocommit": True, "row_factory": row_factory},
                connection_class=psycopg.Connection[Row],
                name="livemosaic-catalog",
                open=True,
            )
        )
        self._closed = False

    @contextmanager
    def _transaction(self, begin: str, lock: int | None) -> Iterator[PgConnection]:
        if self._closed:
            raise StoreError("The catalog is closed.", next_step="Open the catalog again.")
        with translate_errors(self.where), self._pool.connection() as conn:
            conn.execute(begin)
            try:
                if lock is not None:
                    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, lock))
                yield PgConnection(conn)
            except BaseException:
                with suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def session(self) -> Iterator[PgConnection]:
        """A pooled connection outside any transaction (for session-level advisory locks,
        released with the connection if the process dies)."""
        if self._closed:
            raise StoreError("The catalog is closed.", next_step="Open the catalog again.")
        with translate_errors(self.where), self._pool.connection() as conn:
            yield PgConnection(conn)

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        """A read transaction: every statement inside sees the same committed state."""
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", None) as conn:
            yield conn

    @contextmanager
    def write(self, lock: int | None = CATALOG_LOCK) -> Iterator[PgConnection]:
        """A write transaction, serialised with every other holder of ``lock`` (None: no
        lock); committed when the block ends and rolled back on error."""
        with self._transaction("BEGIN", lock) as conn:
            yield conn

    def migrate(self) -> int:
        """Apply the packaged migrations not yet recorded; returns the schema version."""
        known = migrations()
        with self.write(lock=MIGRATION_LOCK) as conn:
            conn.script(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied BIGINT NOT NULL)"
            )
            applied = {int(r[0]) for r in conn.execute("SELECT version FROM schema_version")}
            newest = max((v for v, _, _ in known), default=0)
            if applied and max(applied) > newest:
                raise StoreError(
                    f"The catalog {self.where} has schema version {max(applied)}, newer than "
                    f"this livemosaic knows ({newest}).",
                    next_step="Upgrade livemosaic, or point LIVEMOSAIC_CATALOG_URL elsewhere.",
                )
            for version, name, sql in known:
                if version in applied:
                    continue
                conn.script(sql)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                    (version, name, now_ms()),
                )
        return newest

    def close(self) -> None:
        """Close every connection."""
        self._closed = True
        self._pool.close()
