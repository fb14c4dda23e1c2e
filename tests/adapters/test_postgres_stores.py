"""The job, user, sign-in and snapshot-version tests of the SQLite stores, run against
PostgreSQL: claims from many threads and processes (nodes) at once, a killed node's job,
sign-in counts shared by processes."""

from __future__ import annotations

import pytest

from tests.postgres import pg_database, pg_url

from .test_job_store import *  # noqa: F403
from .test_signin_store import *  # noqa: F403
from .test_snapshot_versions import *  # noqa: F403
from .test_user_store import *  # noqa: F403

__all__ = ["pg_database", "pg_url"]

# SQLite's own: its schema migrations and its CHECK constraint read through sqlite3
del test_a_version_1_catalog_gains_the_job_tables  # noqa: F821
del test_the_database_itself_refuses_unknown_roles  # noqa: F821


@pytest.fixture
def catalog_url(pg_url: str) -> str:
    return pg_url
