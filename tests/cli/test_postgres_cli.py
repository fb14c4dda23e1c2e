"""The command line on a PostgreSQL catalog (LIVEMOSAIC_CATALOG_URL=postgresql://…): init,
datasets and services, as on SQLite; the password never printed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from livemosaic.settings import redact_url
from tests.postgres import pg_database, pg_url

from .test_cli import run
from .test_cli import test_dataset_and_service_lifecycle as test_dataset_and_service_lifecycle

__all__ = ["pg_database", "pg_url"]


@pytest.fixture()
def env(tmp_path: Path, shared_data: Path, pg_url: str) -> dict[str, str]:
    e = dict(os.environ)
    e["LIVEMOSAIC_DATA_DIR"] = str(tmp_path / "data")
    e["LIVEMOSAIC_DATA_FOLDERS"] = str(shared_data)
    e["LIVEMOSAIC_CATALOG_URL"] = pg_url
    return e


def test_init_and_config_never_print_the_password(env: dict[str, str]) -> None:
    parts = urlsplit(env["LIVEMOSAIC_CATALOG_URL"])
    user = parts.username or "postgres"
    host = f"{user}:not-checked-under-trust@{parts.hostname}:{parts.port or 5432}"
    env["LIVEMOSAIC_CATALOG_URL"] = urlunsplit(parts._replace(netloc=host))
    out = run(["init"], env).stdout
    assert "Catalog ready at postgresql://" in out and "not-checked" not in out
    shown = json.loads(run(["config"], env).stdout)
    assert "not-checked" not in json.dumps(shown)
    assert shown["catalog_url"] == redact_url(env["LIVEMOSAIC_CATALOG_URL"])


def test_a_missing_database_says_how_to_create_it(env: dict[str, str]) -> None:
    parts = urlsplit(env["LIVEMOSAIC_CATALOG_URL"])
    env["LIVEMOSAIC_CATALOG_URL"] = urlunsplit(parts._replace(path="/lm_test_absent", query=""))
    proc = run(["init"], env, ok=False)
    assert proc.returncode != 0
    assert "createdb" in proc.stderr + proc.stdout
