"""``watch``, ``add`` and ``quarantine`` as real subprocesses against a real catalog."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.raster import RasterioProjector
from livemosaic.core.models import MosaicDataset, ServiceDefinition
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry

MODULE = [sys.executable, "-m", "livemosaic.cli.watch"]


def run(cmd: list[str], env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == code, proc.stderr + proc.stdout
    return proc


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "in").mkdir()
    e = dict(os.environ)
    e["LIVEMOSAIC_DATA_DIR"] = str(tmp_path / "data")
    e["LIVEMOSAIC_DATA_FOLDERS"] = str(tmp_path / "in")
    stores = open_stores(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}")
    stores.catalog.create_dataset(MosaicDataset("d", "EPSG:4326"))
    Publisher(stores.catalog, ServiceRegistry(), RasterioProjector()).publish(
        ServiceDefinition(name="S", folder="W", dataset="d", properties={"hasLiveData": "true"})
    )
    stores.close()
    return e


def jobs(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "data" / "catalog.db") as conn:
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])


def test_add_goes_through_the_pipeline_and_submits_one_refresh(
    env: dict[str, str], tmp_path: Path, shared_data: Path
) -> None:
    folder = tmp_path / "in"
    shutil.copyfile(shared_data / "timeseries/bcsd_obs_1999.nc", folder / "obs.nc")
    shutil.copyfile(shared_data / "size/byte.tif", folder / "byte.tif")
    out = run([*MODULE, "add", str(folder), "--dataset", "d", "--refresh"], env).stdout
    assert "Added 25 items from 2 files" in out
    assert "Refresh Service job submitted for W/S." in out
    assert jobs(tmp_path) == 1
    again = run([*MODULE, "add", str(folder / "obs.nc"), "--dataset", "d", "--refresh"], env)
    assert "1 unchanged files skipped" in again.stdout and "submitted" not in again.stdout
    assert jobs(tmp_path) == 1


def test_bad_files_are_listed_and_cleared(
    env: dict[str, str], tmp_path: Path, shared_data: Path
) -> None:
    bad = tmp_path / "in" / "broken.tif"
    shutil.copyfile(shared_data / "bad/truncated.tif", bad)
    proc = run([*MODULE, "add", str(bad), "--dataset", "d"], env, code=2)
    assert "rejected" in proc.stderr and "truncated" in proc.stderr
    assert bad.exists()  # an explicit add only records bad files
    listed = json.loads(run([*MODULE, "quarantine", "list", "--json"], env).stdout)
    assert [(e["dataset"], e["path"]) for e in listed] == [("d", str(bad))]
    assert "truncated" in listed[0]["reason"]
    assert str(bad) in run([*MODULE, "quarantine", "list", "--dataset", "d"], env).stdout
    assert "Cleared 1" in run([*MODULE, "quarantine", "clear", "--dataset", "d"], env).stdout
    assert "No quarantined files." in run([*MODULE, "quarantine", "list"], env).stdout


def test_watch_once_catches_up_and_exits(
    env: dict[str, str], tmp_path: Path, shared_data: Path
) -> None:
    folder = tmp_path / "in"
    shutil.copyfile(shared_data / "size/byte.tif", folder / "a.tif")
    shutil.copyfile(shared_data / "bad/not_a_raster.tif", folder / "b.tif")
    args = [*MODULE, "watch", "--folder", str(folder), "--dataset", "d", "--service", "W/S"]
    out = run([*args, "--settle", "0.1", "--once"], env).stdout
    assert "Stopped: 1 files added, 1 quarantined" in out
    assert (folder / ".quarantine" / "b.tif").exists()
    assert jobs(tmp_path) == 1


def test_watch_needs_something_to_watch(env: dict[str, str], tmp_path: Path) -> None:
    assert "say what to watch" in run([*MODULE, "watch"], env, code=2).stderr
    config = tmp_path / "rules.toml"
    config.write_text('[[watch]]\nfolder = "in"\ndataset = "d"\nsettle = 1\n')
    proc = run([*MODULE, "watch", "--config", str(config)], env, code=1)
    assert "unknown key(s) settle" in proc.stderr
