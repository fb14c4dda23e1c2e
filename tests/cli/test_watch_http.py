"""The standalone watcher asks a running server for Refresh Service over HTTP (``--url``).

A live server (uvicorn on 127.0.0.1) owns the catalog; ``livemosaic watch`` / ``add`` run as
real subprocesses on the same catalog database, with a publisher's credentials in the
environment. The server's request log shows what they sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from livemosaic.adapters.watch.http_refresh import HttpRefresh
from livemosaic.app import AppContext
from livemosaic.client import LiveMosaicClient
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from tests.liveserver import LiveServer, make_server

MODULE = [sys.executable, "-m", "livemosaic.cli.watch"]
PASSWORD = "watcher-password-1"


def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    ing.create_dataset("tiles")
    assert ing.add_paths("tiles", [data / "base/rgb1.tif"]).added == 1
    live = {"hasLiveData": "true"}
    ctx.publisher.publish(ServiceDefinition("tiles", "tiles", folder="Live", properties=live))


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("watch_http")
    data = work / "in"
    for sub in ("base", "drop"):
        (data / sub).mkdir(parents=True)
    shutil.copyfile(shared_data / "mosaic/rgb1.tif", data / "base/rgb1.tif")
    users = {"pub": ("publisher", PASSWORD), "viewer": ("user", PASSWORD)}
    with make_server(work, data, populate, users=users) as live:
        yield live


def env_for(server: LiveServer, username: str = "pub", password: str = PASSWORD) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LIVEMOSAIC_DATA_DIR=str(server.settings.data_dir),
        LIVEMOSAIC_DATA_FOLDERS=str(server.data),
        LIVEMOSAIC_USERNAME=username,
        LIVEMOSAIC_PASSWORD=password,
    )
    env.pop("LIVEMOSAIC_URL", None)
    return env


def run(args: list[str], env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*MODULE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == code, proc.stderr + proc.stdout
    return proc


def submitted_jobs(server: LiveServer, mark: int) -> list[str]:
    """Job ids of the submitJob requests the server answered since ``mark``."""
    ids = []
    for entry in server.log.since(mark):
        if entry.path.lower().endswith("/submitjob"):
            assert entry.headers.get("x-esri-authorization", "").startswith("Bearer ")
            ids.append(json.loads(entry.response)["jobId"])
    return ids


def xmax(client: LiveMosaicClient) -> float:
    return float(client.service_info("tiles", folder="Live")["extent"]["xmax"])


def test_add_with_url_submits_the_refresh_over_http(server: LiveServer, shared_data: Path):
    path = server.data / "drop/rgb2.tif"
    shutil.copyfile(shared_data / "mosaic/rgb2.tif", path)
    with LiveMosaicClient(server.root, "pub", PASSWORD) as client:
        before = xmax(client)
        mark = server.log.mark()
        args = ["add", str(path), "--dataset", "tiles", "--refresh", "--url", server.root]
        out = run(args, env_for(server)).stdout
        assert "Refresh Service job submitted for Live/tiles." in out
        [job_id] = submitted_jobs(server, mark)
        job = client.wait(job_id, timeout=30)  # pub owns it: the watcher signed in as pub
        assert job.succeeded, job
        assert xmax(client) > before + 1000


def test_watch_once_with_url(server: LiveServer, shared_data: Path):
    folder = server.data / "drop"
    shutil.copyfile(shared_data / "mosaic/rgb4.tif", folder / "rgb4.tif")
    mark = server.log.mark()
    env = {**env_for(server), "LIVEMOSAIC_URL": server.root}  # the URL from the environment
    args = ["watch", "--folder", str(folder), "--dataset", "tiles", "--service", "Live/tiles"]
    out = run([*args, "--settle", "0.1", "--once"], env).stdout
    assert "Stopped: 1 files added" in out
    [job_id] = submitted_jobs(server, mark)
    with LiveMosaicClient(server.root, "pub", PASSWORD) as client:
        assert client.wait(job_id, timeout=30).succeeded


def test_wrong_password_or_role(server: LiveServer, shared_data: Path):
    args = ["watch", "--folder", str(server.data / "drop"), "--dataset", "tiles", "--once"]
    bad = run([*args, "--url", server.root], env_for(server, password="nope"), code=1)
    assert "Unable to generate token" in bad.stderr  # refused before watching anything
    # a user below publisher signs in, but Refresh Service refuses it: a note, no crash
    path = server.data / "drop/byte.tif"  # elsewhere on Earth: the extent changes
    shutil.copyfile(shared_data / "size/byte.tif", path)
    mark = server.log.mark()
    proc = run(
        ["add", str(path), "--dataset", "tiles", "--refresh", "--url", server.root],
        env_for(server, username="viewer"),
    )
    assert "Added 1 items from 1 files" in proc.stdout
    assert "Live/tiles differs from its published info" in proc.stdout
    assert "403" in proc.stderr and "submitted" not in proc.stdout
    assert [e.status for e in server.log.since(mark) if e.path.lower().endswith("/submitjob")]


def test_http_trigger_remembers_its_jobs(server: LiveServer) -> None:
    with LiveMosaicClient(server.root, "pub", PASSWORD) as client:
        trigger = HttpRefresh(client)
        assert trigger.last_job("Live", "tiles") is None
        trigger.request_refresh("Live", "tiles")
        first = trigger.last_job("live", "TILES")
        assert first is not None and trigger.submitted == [first]
        assert client.wait(first, timeout=30).succeeded
        trigger.request_refresh("Live", "tiles")  # the first job finished: a new one
        assert len(trigger.submitted) == 2 and trigger.last_job("Live", "tiles") != first
