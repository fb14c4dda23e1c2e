"""Catalog stores: open one from a URL (``sqlite:///path/catalog.db`` or
``postgresql://user@host:port/database``).

:func:`open_catalog` gives the catalog alone; :func:`open_stores` gives every store of one
database (catalog, jobs, users, sign-in attempts, ingest journal), sharing its connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livemosaic.core.ports import (
    CatalogStore,
    IngestJournal,
    JobStore,
    SigninAttempts,
    UserStore,
)
from livemosaic.errors import InvalidParameter, NotSupported

SQLITE_PREFIX = "sqlite://"
POSTGRES_SCHEMES = ("postgresql", "postgres")
ACCEPTED_URLS = "sqlite:///absolute/path/catalog.db | postgresql://user@host:5432/database"


@dataclass(frozen=True, slots=True)
class Stores:
    """Every store of one database (closing it closes all).

    ``journal`` shares the catalog's transactions: :meth:`IngestJournal.commit` adds items
    and journals them as one unit of work.
    """

    catalog: CatalogStore
    jobs: JobStore
    users: UserStore
    signins: SigninAttempts
    journal: IngestJournal

    def close(self) -> None:
        """Release the shared connections."""
        self.catalog.close()


def _scheme(url: str) -> str:
    return (url or "").strip().partition(":")[0].lower()


def _sqlite_path(url: str) -> Path:
    """The database file an ``sqlite:///`` URL names (errors name the accepted forms)."""
    text = (url or "").strip()
    scheme = _scheme(text)
    if scheme == "sqlite":
        rest = text[len(SQLITE_PREFIX) :] if text.lower().startswith(SQLITE_PREFIX) else ""
        if not rest.startswith("/") or rest.rstrip("/") == "" or ":memory:" in rest:
            raise InvalidParameter(
                "catalog_url",
                f"'{url}' does not name a database file by absolute path.",
                accepted=ACCEPTED_URLS,
            )
        return Path("/" + rest.lstrip("/"))
    raise InvalidParameter(
        "catalog_url", f"'{url}' has an unknown scheme '{scheme}'.", accepted=ACCEPTED_URLS
    )


def _postgres(url: str) -> Stores:
    try:
        from livemosaic.adapters.catalog.postgres import open_postgres
    except ImportError as exc:
        raise NotSupported(
            f"The PostgreSQL catalog needs psycopg, which is not installed ({exc.name}).",
            next_step="Install livemosaic with its postgres extra: pip install 'livemosaic[postgres]'.",
        ) from exc
    return Stores(*open_postgres(url.strip()))


def open_catalog(url: str) -> CatalogStore:
    """The catalog store a URL names; SQLite files are created (with their folder) on demand,
    PostgreSQL databases must exist (their tables are created on demand)."""
    if _scheme(url) in POSTGRES_SCHEMES:
        return _postgres(url).catalog
    path = _sqlite_path(url)
    from livemosaic.adapters.catalog.sqlite import SqliteCatalog

    return SqliteCatalog(path)


def open_stores(url: str) -> Stores:
    """Every store of the database a URL names, on shared connections."""
    if _scheme(url) in POSTGRES_SCHEMES:
        return _postgres(url)
    path = _sqlite_path(url)
    from livemosaic.adapters.catalog.jobs import SqliteJobStore
    from livemosaic.adapters.catalog.journal import SqliteIngestJournal
    from livemosaic.adapters.catalog.signin import SqliteSigninAttempts
    from livemosaic.adapters.catalog.sqlite import SqliteCatalog
    from livemosaic.adapters.catalog.users import SqliteUserStore

    catalog = SqliteCatalog(path)
    pool = catalog.pool
    return Stores(
        catalog,
        SqliteJobStore(pool),
        SqliteUserStore(pool),
        SqliteSigninAttempts(pool),
        SqliteIngestJournal(pool),
    )


__all__ = ["Stores", "open_catalog", "open_stores"]
