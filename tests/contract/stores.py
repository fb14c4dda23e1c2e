"""The store implementations the contract tests run against: one entry each.

Every implementation opens a fresh, empty set of stores (the ports of
:mod:`livemosaic.core.ports`, bundled like ``adapters.catalog.Stores``) and closes it after the
test. Adding an implementation is one :class:`Implementation` in :data:`IMPLEMENTATIONS`;
:func:`skip_reason` says why one cannot run here (the test is then skipped, not failed).

PostgreSQL runs when ``LIVEMOSAIC_TEST_POSTGRES_URL`` names a server database the tests may
create databases from (e.g. ``postgresql://postgres@127.0.0.1:5432/test``) and the PostgreSQL
adapter is installed; each test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from livemosaic.core.ports import (
    CatalogStore,
    IngestJournal,
    JobStore,
    SigninAttempts,
    UserStore,
)
from tests.core.fake_stores import InMemoryStores

POSTGRES_URL_ENV = "LIVEMOSAIC_TEST_POSTGRES_URL"
POSTGRES_ADAPTER = "livemosaic.adapters.catalog.postgres"


class StoreSet(Protocol):
    """Every store port of one database."""

    @property
    def catalog(self) -> CatalogStore: ...
    @property
    def jobs(self) -> JobStore: ...
    @property
    def users(self) -> UserStore: ...
    @property
    def signins(self) -> SigninAttempts: ...
    @property
    def journal(self) -> IngestJournal: ...
    def close(self) -> None: ...


Opener = Callable[[Path], AbstractContextManager[StoreSet]]


@dataclass(frozen=True)
class Implementation:
    """A named way to open fresh stores; ``unavailable`` says why it cannot run (or None)."""

    name: str
    open: Opener
    unavailable: Callable[[], str | None] = lambda: None


@contextmanager
def _memory(tmp: Path) -> Iterator[StoreSet]:
    yield InMemoryStores()


@contextmanager
def _sqlite(tmp: Path) -> Iterator[StoreSet]:
    from livemosaic.adapters.catalog import open_stores

    stores = open_stores(f"sqlite:///{tmp / 'contract.db'}")
    try:
        yield stores
    finally:
        stores.close()


def _postgres_unavailable() -> str | None:
    if not os.environ.get(POSTGRES_URL_ENV):
        return f"{POSTGRES_URL_ENV} is not set"
    if importlib.util.find_spec(POSTGRES_ADAPTER) is None:
        return f"{POSTGRES_ADAPTER} is not installed"
    return None


def _with_database(url: str, name: str) -> str:
    """The same server URL naming another database."""
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


@contextmanager
def _postgresql(tmp: Path) -> Iterator[StoreSet]:
    import psycopg

    from livemosaic.adapters.catalog import open_stores

    url = os.environ[POSTGRES_URL_ENV]
    name = f"lm_contract_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        stores = open_stores(_with_database(url, name))
        try:
            yield stores
        finally:
            stores.close()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


IMPLEMENTATIONS: list[Implementation] = [
    Implementation("memory", _memory),
    Implementation("sqlite", _sqlite),
    Implementation("postgresql", _postgresql, _postgres_unavailable),
]


def skip_reason(impl: Implementation) -> str | None:
    """Why an implementation cannot run here, or None."""
    return impl.unavailable()


__all__ = ["IMPLEMENTATIONS", "Implementation", "StoreSet", "skip_reason"]
