"""The PostgreSQL catalog: every store of one database, shared by any number of nodes.

Selected by a ``postgresql://user@host:port/database`` catalog URL (psycopg 3, a connection
pool per process, versioned migrations applied on open). The SQL shared with the SQLite store
lives next to it in :mod:`livemosaic.adapters.catalog`; this package holds what differs.
"""

from __future__ import annotations

from typing import cast

from livemosaic.adapters.catalog.connection import ConnectionPool
from livemosaic.adapters.catalog.postgres.catalog import PostgresCatalog
from livemosaic.adapters.catalog.postgres.connection import PgPool
from livemosaic.adapters.catalog.postgres.jobs import PostgresJobStore
from livemosaic.adapters.catalog.postgres.journal import PostgresIngestJournal
from livemosaic.adapters.catalog.signin import SqliteSigninAttempts
from livemosaic.adapters.catalog.users import SqliteUserStore


def open_postgres(
    url: str,
) -> tuple[
    PostgresCatalog, PostgresJobStore, SqliteUserStore, SqliteSigninAttempts, PostgresIngestJournal
]:
    """The catalog, job, user, sign-in and ingest-journal stores of a PostgreSQL database, on
    one connection pool.

    Users and sign-in attempts use the SQLite store's code: their SQL is the same in both
    databases and every write holds the catalog write lock, so a sign-in count and its insert
    are atomic across nodes.
    """
    pool = PgPool(url)
    try:
        catalog = PostgresCatalog(pool)
    except BaseException:
        pool.close()
        raise
    shared = cast(ConnectionPool, pool)
    return (
        catalog,
        PostgresJobStore(pool),
        SqliteUserStore(shared),
        SqliteSigninAttempts(shared),
        PostgresIngestJournal(catalog),
    )


__all__ = [
    "PostgresCatalog",
    "PostgresIngestJournal",
    "PostgresJobStore",
    "open_postgres",
]
