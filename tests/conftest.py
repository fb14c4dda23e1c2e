"""Shared fixtures: the sample-data locator."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _sample_data_dir() -> Path | None:
    env = os.environ.get("LIVEMOSAIC_SAMPLE_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for c in candidates:
        if (c / "manifest.json").is_file():
            return c.resolve()
    return None


def reader_folders() -> list[Path]:
    """Folders a module-level raster reader of the tests may read: the sample data and the
    temporary folder (where ``tmp_path`` lives)."""
    sample = _sample_data_dir()
    return [*([sample] if sample else []), Path(tempfile.gettempdir())]


@pytest.fixture(scope="session")
def shared_data() -> Iterator[Path]:
    """The folder of real sample rasters (imagery, dem, crs, mosaic, timeseries, multidim, …)."""
    path = _sample_data_dir()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("sample data not found: set LIVEMOSAIC_SAMPLE_DATA")
        pytest.skip("sample data not found: set LIVEMOSAIC_SAMPLE_DATA to the shared data folder")
    yield path
