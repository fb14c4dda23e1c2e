"""A new user's first hour on the command line: each case a user met, run as a real
subprocess against a real catalog (and a real server where the case needs one)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent / "livemosaic"
HDF4 = "formats/MOD09GA.A2008296.h14v17.006.2015181011753.hdf"


def run(
    args: list[str], env: dict[str, str], code: int = 0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN), *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == code, proc.stderr + proc.stdout
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def env(tmp_path: Path, shared_data: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["LIVEMOSAIC_DATA_DIR"] = str(tmp_path / "data")
    e["LIVEMOSAIC_DATA_FOLDERS"] = str(shared_data)
    for key in ("LIVEMOSAIC_USERNAME", "LIVEMOSAIC_PASSWORD"):
        e.pop(key, None)
    return e


def jobs(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "data" / "catalog.db") as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT id, status FROM jobs")]


def test_hdf4_files_say_how_to_convert_them(
    env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    run(["dataset", "create", "modis", "--crs", "EPSG:4326"], env)
    proc = run(["dataset", "add", "modis", str(shared_data / HDF4), "--quiet"], env, code=2)
    assert "gdal_translate HDF4_EOS" in proc.stderr
    assert proc.stderr.count(str(shared_data / HDF4)) == 1  # the path is not repeated

    proc = run(["add", str(shared_data / HDF4), "--dataset", "modis"], env, code=2)
    listed = json.loads(run(["quarantine", "list", "--json"], env).stdout)
    assert "gdal_translate HDF4_EOS" in listed[0]["reason"]


def test_invalid_crs_names_the_option(env: dict[str, str]) -> None:
    proc = run(["dataset", "create", "x", "--crs", "EPSG:999999"], env, code=1)
    assert "'--crs'" in proc.stderr and "spatialReference" not in proc.stderr
    assert "EPSG:4326" in proc.stderr  # what to give instead


def test_refresh_without_a_terminal_says_how_to_give_the_password(env: dict[str, str]) -> None:
    env = {**env, "LIVEMOSAIC_USERNAME": "ops"}
    proc = run(["refresh", "X", "--url", "http://127.0.0.1:9/arcgis"], env, code=1)
    assert "Aborted" not in proc.stderr and "Warning" not in proc.stderr
    assert "--password-stdin" in proc.stderr and "LIVEMOSAIC_PASSWORD" in proc.stderr


def test_service_set_private_and_unknown_properties(env: dict[str, str], shared_data: Path) -> None:
    run(["dataset", "create", "d"], env)
    run(["dataset", "add", "d", str(shared_data / "mosaic/rgb1.tif"), "--quiet"], env)
    run(["service", "publish", "d", "--name", "F/S"], env)
    assert "private" in run(["service", "set", "F/S", "--private"], env).stdout
    assert json.loads(run(["service", "info", "F/S"], env).stdout)["private"] is True
    run(["service", "set", "F/S", "--public"], env)
    assert json.loads(run(["service", "info", "F/S"], env).stdout)["private"] is False

    proc = run(["service", "set", "F/S", "--property", "private=true"], env, code=1)
    assert "--private" in proc.stderr
    proc = run(["service", "set", "F/S", "--property", "maxImageWidht=100"], env, code=1)
    assert "Unknown property 'maxImageWidht'" in proc.stderr and "maxImageWidth" in proc.stderr
    info = json.loads(run(["service", "info", "F/S"], env).stdout)
    assert "maxImageWidht" not in info["properties"]


def test_serve_on_a_busy_port_fails_before_claiming_to_serve(env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run(["serve", "--port", str(port)], env, code=1)
    assert "serving" not in proc.stdout
    assert "--port" in proc.stderr and str(port) in proc.stderr


def test_a_dataset_that_grows_after_publishing(
    env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    """Empty when published: a warning. Rasters added later reach a static service when it is
    restarted (CLI or server start) and a live one through a submitted Refresh Service job."""
    run(["dataset", "create", "grow", "--crs", "EPSG:3857"], env)
    proc = run(["service", "publish", "grow", "--name", "G/Static"], env)
    assert "has no items yet" in proc.stderr and "dataset add grow" in proc.stderr
    run(["service", "publish", "grow", "--name", "G/Live", "--live"], env)

    proc = run(["dataset", "add", "grow", str(shared_data / "mosaic/rgb1.tif"), "--quiet"], env)
    assert "Service G/Static is static" in proc.stdout
    assert "livemosaic service restart G/Static" in proc.stdout
    assert "Refresh Service job" in proc.stdout and "submitted for G/Live" in proc.stdout
    assert [status for _id, status in jobs(tmp_path)] == ["esriJobSubmitted"]

    # a server started now serves the static service from the dataset as it is, not as it
    # was when published
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}/arcgis/rest/services/G"
    try:
        info = _wait_json(f"{base}/Static/ImageServer", server)
        assert info["bandCount"] == 3 and info["extent"]["xmax"] > info["extent"]["xmin"]
        # the live service's submitted job is run by the server: extent appears there too
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live = _wait_json(f"{base}/Live/ImageServer", server)
            if live.get("bandCount") == 3:
                break
            time.sleep(0.2)
        assert live["bandCount"] == 3
        assert [status for _id, status in jobs(tmp_path)] == ["esriJobSucceeded"]

        # a file added while the server runs reaches the static service by `service restart`
        before = info["extent"]
        run(["dataset", "add", "grow", str(shared_data / "imagery/RGB.byte.tif"), "--quiet"], env)
        assert _wait_json(f"{base}/Static/ImageServer", server)["extent"] == before
        assert "Restarted G/Static" in run(["service", "restart", "G/Static"], env).stdout
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = _wait_json(f"{base}/Static/ImageServer", server)["extent"]
            if after != before:
                break
            time.sleep(0.2)
        assert after != before
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _wait_json(url: str, server: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            r = httpx.get(url, params={"f": "json"}, timeout=5)
            if r.status_code == 200:
                body: dict[str, object] = r.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not answer {url}")
