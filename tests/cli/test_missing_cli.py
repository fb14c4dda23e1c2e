"""``livemosaic dataset missing``: list (and remove) the items of files that are gone."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.cli.test_cli import run


def test_dataset_missing_lists_and_removes(tmp_path: Path, shared_data: Path) -> None:
    folder = tmp_path / "rasters"
    folder.mkdir()
    for name in ("a.tif", "b.tif"):
        shutil.copyfile(shared_data / "mosaic/rgb1.tif", folder / name)
    env = dict(os.environ)
    env["LIVEMOSAIC_DATA_DIR"] = str(tmp_path / "data")
    env["LIVEMOSAIC_DATA_FOLDERS"] = str(folder)
    run(["dataset", "create", "tiles"], env)
    run(["dataset", "add", "tiles", str(folder), "--quiet"], env)
    out = run(["dataset", "missing", "tiles"], env).stdout
    assert "0 missing files of 2 items in 'tiles'." in out
    (folder / "a.tif").unlink()
    out = run(["dataset", "missing", "tiles"], env).stdout
    assert f"{folder / 'a.tif'}  (items 1)" in out
    assert "livemosaic dataset missing tiles --remove" in out
    body = json.loads(run(["dataset", "missing", "tiles", "--json"], env).stdout)
    assert body["files"] == [{"path": str(folder / "a.tif"), "itemIds": [1]}]
    body = json.loads(run(["dataset", "missing", "tiles", "--json", "--remove"], env).stdout)
    assert body["removed"] == 1
    info = json.loads(run(["dataset", "info", "tiles"], env).stdout)
    assert info["summary"]["itemCount"] == 1
    proc = run(["dataset", "missing", "nope"], env, ok=False)
    assert proc.returncode != 0 and "nope" in proc.stderr + proc.stdout
