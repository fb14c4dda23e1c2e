"""Event bus implementations: in-process (:class:`LocalEventBus`) and PostgreSQL
LISTEN/NOTIFY (:class:`~livemosaic.adapters.events.postgres.PostgresEventBus`)."""

from __future__ import annotations

from livemosaic.adapters.events.local import LocalEventBus
from livemosaic.core.events import EventBus
from livemosaic.errors import InvalidParameter

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return url.strip().lower().startswith(POSTGRES_SCHEMES)


def open_event_bus(spec: str, *, catalog_url: str, channel: str) -> EventBus:
    """The bus named by ``spec``: ``local`` or a PostgreSQL URL (not started).

    An empty ``spec`` picks the catalog's database when it is PostgreSQL, else ``local``.
    """
    value = spec.strip()
    if not value:
        value = catalog_url if is_postgres_url(catalog_url) else "local"
    if value.lower() == "local":
        return LocalEventBus()
    if is_postgres_url(value):
        from livemosaic.adapters.events.postgres import PostgresEventBus

        return PostgresEventBus(value, channel=channel)
    raise InvalidParameter(
        "event_bus", f"'{value[:80]}' is not an event bus.", accepted="local | postgresql://…"
    )


__all__ = ["LocalEventBus", "is_postgres_url", "open_event_bus"]
