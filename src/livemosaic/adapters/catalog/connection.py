"""SQLite connections for the catalog: one per thread, WAL, serialised writes, migrations.

Readers use their thread's connection inside a read transaction, so they always see one
committed state (WAL snapshots never show half a write). Writers take a lock inside the
process and ``BEGIN IMMEDIATE`` across processes, waiting up to the busy timeout.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path

from livemosaic.errors import LimitExceeded, LiveMosaicError, StoreError

log = logging.getLogger("livemosaic.catalog")
MIGRATION_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL text) of every packaged migration, in order."""
    folder = resources.files("livemosaic.adapters.catalog").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        m = MIGRATION_NAME.match(entry.name)
        if m is not None:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def split_statements(script: str) -> list[str]:
    """The complete SQL statements of a script (so they can run inside one transaction)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buf[:80]!r}")
    return statements


@contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3 exceptions into StoreError saying what to do next.

    The messages reach HTTP clients, so they never name the database file; the log does.
    """
    try:
        yield
    except LiveMosaicError:
        raise
    except sqlite3.OperationalError as exc:
        text = str(exc)
        log.warning("catalog database %s: %s", path, text)
        if "locked" in text or "busy" in text:
            raise StoreError(
                f"The catalog database stayed busy: {text}.",
                next_step="Another process holds a long write; retry, or raise the busy timeout.",
            ) from exc
        raise StoreError(
            f"The catalog database failed: {text}.",
            next_step="Check that the catalog file (the server log names it) exists, is "
            "writable and is not corrupt (sqlite3 FILE 'PRAGMA integrity_check').",
        ) from exc
    except sqlite3.Error as exc:
        log.warning("catalog database %s: %s", path, exc)
        raise StoreError(
            f"The catalog database failed: {exc}.",
            next_step="Nothing was changed; check the database file (the server log names it) "
            "and retry.",
        ) from exc
    except OverflowError as exc:
        raise LimitExceeded(
            f"A number is beyond what the catalog stores (64-bit integers, ±{2**63 - 1}).",
            next_step="Nothing was changed; use smaller numbers (or check the raster's metadata).",
        ) from exc


class ConnectionPool:
    """Per-thread SQLite connections to one database file."""

    def __init__(self, path: Path, busy_timeout_ms: int = 30000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000.0,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StoreError("The catalog is closed.", next_step="Open the catalog again.")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with translate_errors(self.path):
                conn = self._connect()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        conn = self.connection()
        with translate_errors(self.path):
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                with suppress(sqlite3.Error):
                    conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed when the block ends and rolled back on error."""
        with self._lock:
            conn = self.connection()
            with translate_errors(self.path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

    def migrate(self) -> int:
        """Apply the packaged migrations not yet recorded; returns the schema version."""
        known = migrations()
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied INTEGER NOT NULL)"
            )
            applied = {r[0] for r in conn.execute("SELECT version FROM schema_version")}
            newest = max((v for v, _, _ in known), default=0)
            if applied and max(applied) > newest:
                raise StoreError(
                    f"The catalog {self.path} has schema version {max(applied)}, newer than "
                    f"this livemosaic knows ({newest}).",
                    next_step="Upgrade livemosaic, or point LIVEMOSAIC_CATALOG_URL elsewhere.",
                )
            for version, name, sql in known:
                if version in applied:
                    continue
                for statement in split_statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                    (version, name, now_ms()),
                )
            conn.execute("ANALYZE sqlite_schema")  # load the planner statistics
        return newest

    def close(self) -> None:
        """Close every connection of every thread."""
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
