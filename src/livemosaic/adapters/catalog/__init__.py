"""Catalog stores: open one from a URL (``sqlite:///path/catalog.db``).

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
ACCEPTED_URLS = "sqlite:///absolute/path/catalog.db"


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


def _sqlite_path(url: str) -> Path:
    """The database file an ``sqlite:///`` URL names (errors name the accepted forms)."""
    text = (url or "").strip()
    scheme = text.partition(":")[0].lower()
    if scheme == "sqlite":
        rest = text[len(SQLITE_PREFIX) :] if text.lower().startswith(SQLITE_PREFIX) else ""
        if not rest.startswith("/") or rest.rstrip("/") == "" or ":memory:" in rest:
            raise InvalidParameter(
                "catalog_url",
                f"'{url}' does not name a database file by absolute path.",
                accepted=ACCEPTED_URLS,
            )
        return Path("/" + rest.lstrip("/"))
    if scheme in ("postgresql", "postgres"):
        raise NotSupported(
            f"The PostgreSQL catalog store is not available yet ('{scheme}://…').",
            next_step=f"Use an SQLite catalog for now: LIVEMOSAIC_CATALOG_URL={ACCEPTED_URLS}.",
        )
    raise InvalidParameter(
        "catalog_url", f"'{url}' has an unknown scheme '{scheme}'.", accepted=ACCEPTED_URLS
    )


def open_catalog(url: str) -> CatalogStore:
    """The catalog store a URL names; SQLite files are created (with their folder) on demand."""
    path = _sqlite_path(url)
    from livemosaic.adapters.catalog.sqlite import SqliteCatalog

    return SqliteCatalog(path)


def open_stores(url: str) -> Stores:
    """Every store of the database a URL names, on shared connections."""
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
