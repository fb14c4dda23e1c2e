"""Catalog stores: open one from a URL (``sqlite:///path/catalog.db``)."""

from __future__ import annotations

from pathlib import Path

from livemosaic.core.ports import CatalogStore
from livemosaic.errors import InvalidParameter, NotSupported

SQLITE_PREFIX = "sqlite://"
ACCEPTED_URLS = "sqlite:///absolute/path/catalog.db"


def open_catalog(url: str) -> CatalogStore:
    """The catalog store a URL names; SQLite files are created (with their folder) on demand."""
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
        from livemosaic.adapters.catalog.sqlite import SqliteCatalog

        return SqliteCatalog(Path("/" + rest.lstrip("/")))
    if scheme in ("postgresql", "postgres"):
        raise NotSupported(
            f"The PostgreSQL catalog store is not available yet ('{scheme}://…').",
            next_step=f"Use an SQLite catalog for now: LIVEMOSAIC_CATALOG_URL={ACCEPTED_URLS}.",
        )
    raise InvalidParameter(
        "catalog_url", f"'{url}' has an unknown scheme '{scheme}'.", accepted=ACCEPTED_URLS
    )


__all__ = ["open_catalog"]
