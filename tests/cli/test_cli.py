"""The livemosaic command line, run as a real subprocess against a real catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "livemosaic"


def run(args: list[str], env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if ok:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture()
def env(tmp_path: Path, shared_data: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["LIVEMOSAIC_DATA_DIR"] = str(tmp_path / "data")
    e["LIVEMOSAIC_DATA_FOLDERS"] = str(shared_data)
    return e


def test_help_everywhere(env: dict[str, str]) -> None:
    for args in (
        [],
        ["dataset"],
        ["dataset", "create"],
        ["dataset", "add"],
        ["dataset", "remove"],
        ["dataset", "missing"],
        ["dataset", "list"],
        ["dataset", "info"],
        ["dataset", "set"],
        ["dataset", "delete"],
        ["service"],
        ["service", "publish"],
        ["service", "list"],
        ["service", "info"],
        ["service", "set"],
        ["service", "delete"],
        ["serve"],
        ["init"],
        ["config"],
    ):
        out = run([*args, "--help"], env).stdout
        assert "Usage:" in out


def test_dataset_and_service_lifecycle(env: dict[str, str], shared_data: Path) -> None:
    assert "Catalog ready" in run(["init"], env).stdout
    run(["dataset", "create", "ndvi", "--time-pattern", "%Y-%m-%d"], env)
    out = run(["dataset", "add", "ndvi", str(shared_data / "timeseries" / "modis_ndvi")], env)
    assert "Added 6 items from 6 files" in out.stdout
    assert "Adding to ndvi" in out.stderr  # the progress bar
    info = json.loads(run(["dataset", "info", "ndvi", "--history"], env).stdout)
    assert info["summary"]["itemCount"] == 6
    assert info["summary"]["timeExtent"] == ["2013-09-14T00:00:00Z", "2014-02-18T00:00:00Z"]
    assert info["recentHistory"], "history is on by default"
    assert "ndvi" in run(["dataset", "list"], env).stdout

    out = run(["dataset", "remove", "ndvi", "--older-than", "2013-10-01"], env).stdout
    assert "Removed 1 items" in out
    out = run(["dataset", "remove", "ndvi", "--where", "StdTime >= DATE '2014-01-01'"], env).stdout
    assert "Removed 2 items" in out

    out = run(["service", "publish", "ndvi", "--name", "Veg/NDVI"], env).stdout
    assert "/arcgis/rest/services/Veg/NDVI/ImageServer" in out
    assert "static" in run(["service", "list"], env).stdout
    run(["service", "set", "Veg/NDVI", "--live"], env)
    svc = json.loads(run(["service", "info", "Veg/NDVI"], env).stdout)
    assert svc["properties"]["hasLiveData"] == "true"
    assert svc["publishedItemCount"] == 3
    run(["dataset", "set", "ndvi", "--no-history"], env)
    assert json.loads(run(["dataset", "info", "ndvi"], env).stdout)["history"] is False

    # a published dataset cannot be deleted; after the service goes, it can
    proc = run(["dataset", "delete", "ndvi", "--yes"], env, ok=False)
    assert proc.returncode != 0 and "NDVI" in proc.stderr
    run(["service", "delete", "Veg/NDVI"], env)
    assert (
        "Deleted mosaic dataset 'ndvi' (3 items"
        in run(["dataset", "delete", "ndvi", "--yes"], env).stdout
    )
    assert (shared_data / "timeseries" / "modis_ndvi").is_dir()  # files untouched
    assert "No mosaic datasets" in run(["dataset", "list"], env).stdout


def test_errors_say_what_to_do(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["dataset", "add", "nope", str(tmp_path)], env, ok=False)
    assert proc.returncode != 0
    assert "livemosaic dataset create" in proc.stderr
    run(["dataset", "create", "d"], env)
    proc = run(["dataset", "add", "d", str(tmp_path)], env, ok=False)
    assert "LIVEMOSAIC_DATA_FOLDERS" in proc.stderr
    proc = run(["dataset", "create", "bad name"], env, ok=False)
    assert "letters, digits and underscores" in proc.stderr
    proc = run(["dataset", "remove", "d"], env, ok=False)
    assert "--id, --where, --path or --older-than" in proc.stderr
    proc = run(["dataset", "remove", "d", "--where", "Nope = 1"], env, ok=False)
    assert "Nope" in proc.stderr
    proc = run(["service", "publish", "missing"], env, ok=False)
    assert "livemosaic dataset create" in proc.stderr


def test_bad_files_are_reported(env: dict[str, str], shared_data: Path) -> None:
    run(["dataset", "create", "d", "--crs", "4326"], env)
    proc = run(["dataset", "add", "d", str(shared_data / "bad")], env, ok=False)
    assert proc.returncode == 2
    assert proc.stderr.count("rejected") == 6
    assert "truncated.tif" in proc.stderr


def test_service_properties_are_validated_when_set(env: dict[str, str], shared_data: Path) -> None:
    run(["dataset", "create", "tiny"], env)
    run(["dataset", "add", "tiny", str(shared_data / "size" / "byte.tif")], env)
    run(["service", "publish", "tiny"], env)
    proc = run(["service", "set", "tiny", "--property", "maxImageWidth=wide"], env, ok=False)
    assert proc.returncode == 1 and "maxImageWidth" in proc.stderr and "accepted" in proc.stderr
    run(["service", "set", "tiny", "--property", "maxImageWidth=2048"], env)
    info = json.loads(run(["service", "info", "tiny"], env).stdout)
    assert info["properties"]["maxImageWidth"] == "2048" and info["propertyProblems"] == []
