"""The PostgreSQL of the tests (127.0.0.1:5432, user postgres, database test; override with
``LIVEMOSAIC_TEST_POSTGRES_URL``) and unique NOTIFY channels for event bus tests."""

from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_URL = os.environ.get(
    "LIVEMOSAIC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_or_skip() -> str:
    """The test database URL; the test is skipped when no PostgreSQL answers there."""
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        if os.environ.get("CI"):  # scripts/test starts PostgreSQL: under CI it must answer
            pytest.fail(f"no PostgreSQL at {POSTGRES_URL} under CI: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


def unique_channel() -> str:
    """A NOTIFY channel no other test uses."""
    return f"lm_test_{uuid.uuid4().hex[:12]}"
