"""PostgreSQL for tests: one fresh database per test session, one schema per test.

The server comes from ``LIVEMOSAIC_TEST_POSTGRES_URL`` (a URL of an existing database used to
create others; default ``postgresql://postgres@127.0.0.1:5432/test``). The session creates a
database named ``lm_test_…`` and drops it at the end; each test gets a URL whose
``search_path`` starts with its own new schema, so every test opens an empty catalog. Without a
reachable server the tests are skipped, except under CI, where they fail.

Import the fixtures into a test module: ``from tests.postgres import pg_database, pg_url``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

DEFAULT_BASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
EXTENSIONS = ("citext", "btree_gist")


def base_url() -> str:
    """The URL tests create their databases from."""
    return os.environ.get("LIVEMOSAIC_TEST_POSTGRES_URL") or DEFAULT_BASE_URL


def with_database(url: str, database: str, query: str = "") -> str:
    """``url`` naming another database (and query string)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, query, ""))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not available under CI: {reason}")
    pytest.skip(f"PostgreSQL is not available ({reason}); set LIVEMOSAIC_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a fresh database for this test session (dropped afterwards)."""
    try:
        import psycopg
    except ImportError as exc:
        _unavailable(f"psycopg is not installed: {exc}")
        raise
    base = base_url()
    name = f"lm_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        _unavailable(str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    url = with_database(base, name)
    with psycopg.connect(url, autocommit=True) as conn:
        for ext in EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}".encode())
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A catalog URL whose tables land in a new, empty schema of the session database."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    options = quote(f"-csearch_path={schema},public")
    yield with_database(pg_database, urlsplit(pg_database).path.lstrip("/"), f"options={options}")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())
