"""`livemosaic serve --demo` (what scripts/serve runs) brings up a working demo service that
follows its watched folder ``<data-dir>/incoming``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import rasterio
from affine import Affine

BIN = Path(sys.executable).parent / "livemosaic"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drop_east_tile(data_dir: Path) -> rasterio.coords.BoundingBox:
    """Write a copy of demo tile rgb4 moved one tile east into ``incoming`` (``.part`` then
    rename, as a careful producer does); its bounds."""
    source = data_dir / "demo" / "rgb4.tif"
    part = data_dir / "incoming" / "east.tif.part"
    with rasterio.open(source) as src:
        profile = src.profile
        profile["transform"] = src.transform * Affine.translation(src.width, 0)
        with rasterio.open(part, "w", **profile) as dst:
            dst.write(src.read())
            bounds = dst.bounds
    part.rename(part.with_suffix(""))
    return bounds


def test_serve_demo(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ)
    env.pop("LIVEMOSAIC_DATA_FOLDERS", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(BIN), "--data-dir", str(tmp_path / "data"), "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/arcgis/rest/services"
    try:
        deadline = time.monotonic() + 90
        info = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"{base}/Demo/Landsat/ImageServer", params={"f": "json"}, timeout=5)
                info = r.json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert info is not None, (tmp_path / "serve.log").read_text()
        assert info["name"] == "Landsat"
        assert info["bandCount"] == 3
        assert info["extent"]["xmax"] > info["extent"]["xmin"]
        listing = httpx.get(base, params={"f": "json"}).json()
        assert "Demo" in listing["folders"]
        img = httpx.get(
            f"{base}/Demo/Landsat/ImageServer/exportImage",
            params={"size": "256,256", "format": "png", "f": "image"},
            timeout=30,
        )
        assert img.content[:4] == b"\x89PNG"
        # the demo watches <data-dir>/incoming: a tile dropped there extends the service
        east = drop_east_tile(tmp_path / "data")
        deadline = time.monotonic() + 60
        grown = info
        while time.monotonic() < deadline and grown["extent"]["xmax"] <= info["extent"]["xmax"]:
            time.sleep(0.2)
            grown = httpx.get(f"{base}/Demo/Landsat/ImageServer", params={"f": "json"}).json()
        assert grown["extent"]["xmax"] > info["extent"]["xmax"], (
            tmp_path / "serve.log"
        ).read_text()
        assert grown["extent"]["xmax"] == pytest.approx(east.right)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()
    # a second start reuses the catalog (idempotent demo install)
    assert (tmp_path / "data" / "catalog.db").exists()
