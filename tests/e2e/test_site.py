"""A site: three server nodes and one watcher over one PostgreSQL (issue 8 §5).

Every process gets the same catalog URL and nothing else in common; the event bus follows the
catalog (PostgreSQL LISTEN/NOTIFY) and snapshot polling is off, so only the database and its
notifications tie the nodes together, as on separate machines.

* Files dropped into the watched folder are ingested once by the watcher, which submits
  Refresh Service into the shared job table; a node's job runner runs it; all three nodes then
  serve the new extent and time extent, and the WebSocket clients of every node are told
  within a second of the first node serving it.
* A node killed with SIGKILL in the middle of a burst of refresh jobs leaves none of them
  executing or waiting: the surviving nodes finish them (a claimed job whose node stopped
  heart-beating is put back), and they keep serving throughout.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from livemosaic.rest.notify import WS_PATH
from tests.e2e.test_live_ingest import Notifications
from tests.postgres import pg_database, pg_url  # noqa: F401  (fixtures)
from tests.rest.secure import (
    BIN,
    ROOT,
    TERMINAL,
    ServeProcess,
    bearer,
    ndvi,
    prepare_site,
    sign_in,
    submit,
)

SERVICE = "Live/ndvi"
SVC = f"{ROOT}/rest/services/{SERVICE}/ImageServer"
VERSION = "X-LiveMosaic-Service-Version"
WITHIN = 1.0  # seconds (issue 8 §3)
STALE = 15.0  # a job runner's heartbeat is stale after this long (adapters/jobs/runner.py)


def _info(base: str) -> tuple[int, dict[str, Any]]:
    with httpx.Client(timeout=30) as c:  # a fresh connection each time
        r = c.get(f"{base}{SVC}", params={"f": "json"})
        return int(r.headers[VERSION]), dict(r.json())


def _jobs(catalog_url: str) -> dict[str, str]:
    with psycopg.connect(catalog_url) as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute("SELECT id, status FROM jobs")}


@pytest.fixture
def site(
    pg_url: str,  # noqa: F811
    shared_data: Path,
    tmp_path: Path,
) -> Iterator[tuple[list[ServeProcess], Path, dict[str, str]]]:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    data_dir = prepare_site(tmp_path / "site", shared_data, catalog_url=pg_url)
    env = {
        "LIVEMOSAIC_CATALOG_URL": pg_url,
        "LIVEMOSAIC_DATA_FOLDERS": str(incoming),
        "LIVEMOSAIC_SNAPSHOT_POLL_SECONDS": "3600",  # only the bus tells the nodes
    }
    nodes = [
        ServeProcess(data_dir, shared_data, tmp_path / f"node{i}.log", env=env) for i in range(3)
    ]
    try:
        for node in nodes:
            node.wait_ready()
        yield nodes, incoming, env
    finally:
        for node in nodes:
            node.stop()


def _watcher(env: dict[str, str], incoming: Path, data_dir: Path, log: Any) -> Any:
    import os
    import subprocess

    environ = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMOSAIC_")}
    environ |= env
    return subprocess.Popen(
        [str(BIN), "--data-dir", str(data_dir), "watch", "--folder", str(incoming),
         "--dataset", "ndvi", "--service", SERVICE, "--settle", "0.3", "--batch-window", "0.5"],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_files_dropped_reach_every_node_and_every_client(
    site: tuple[list[ServeProcess], Path, dict[str, str]],
    shared_data: Path,
    tmp_path: Path,
) -> None:
    nodes, incoming, env = site
    clients = [
        Notifications(n.base.replace("http://", "ws://") + ROOT + WS_PATH, [SERVICE]) for n in nodes
    ]
    for c in clients:
        threading.Thread(target=c.run, daemon=True).start()
    log = (tmp_path / "watcher.log").open("w")
    watcher = _watcher(env, incoming, nodes[0].data_dir, log)
    try:
        for c in clients:
            assert c.ready.wait(15) and not c.error, c.error
        before_version, before = _info(nodes[1].base)
        for path in ndvi(shared_data)[3:]:  # three later dates, delivered as producers do
            part = incoming / (path.name + ".part")
            shutil.copyfile(path, part)
            part.rename(incoming / path.name)
        deadline = time.monotonic() + 60
        served_at: list[float | None] = [None, None, None]
        infos: list[dict[str, Any]] = [{}, {}, {}]
        while time.monotonic() < deadline and None in served_at:
            for i, node in enumerate(nodes):
                if served_at[i] is None:
                    version, info = _info(node.base)
                    if info["timeInfo"]["timeExtent"][1] > before["timeInfo"]["timeExtent"][1]:
                        served_at[i], infos[i] = time.monotonic(), info
                        assert version > before_version
            time.sleep(0.02)
        assert None not in served_at, f"not served by every node: {served_at}"
        first = min(t for t in served_at if t is not None)
        spread = max(t for t in served_at if t is not None) - first
        assert spread < WITHIN, f"nodes served the refresh {spread:.2f} s apart"
        assert infos[0]["timeInfo"] == infos[1]["timeInfo"] == infos[2]["timeInfo"]
        assert infos[0]["extent"] == infos[1]["extent"] == infos[2]["extent"]
        end = infos[0]["timeInfo"]["timeExtent"][1]
        told = []
        for c in clients:
            at = None
            wait_until = time.monotonic() + 5
            while at is None and time.monotonic() < wait_until:
                at = c.first(lambda m: m.get("service") == f"{SERVICE}.ImageServer", 0.0,
                             "serviceRefreshed")  # fmt: skip
                time.sleep(0.01)
            told.append(at)
        assert None not in told, [c.messages for c in clients]
        late = [t - first for t in told if t is not None]
        print(f"served {spread:.3f} s apart; clients told {[round(x, 3) for x in late]} s")
        assert max(late) < WITHIN
        assert end >= 1392681600000  # 2014-02-18, the last date dropped
        with psycopg.connect(env["LIVEMOSAIC_CATALOG_URL"]) as conn:
            rows = conn.execute("SELECT count(*) FROM items i JOIN datasets d ON d.id = "
                                "i.dataset_id WHERE d.name = 'ndvi'").fetchone()  # fmt: skip
        assert rows is not None and rows[0] == 6  # each file once
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
        log.close()
        for c in clients:
            c.stop.set()


def test_a_node_killed_during_jobs_leaves_nothing_executing(
    site: tuple[list[ServeProcess], Path, dict[str, str]],
) -> None:
    nodes, _incoming, env = site
    victim, survivors = nodes[0], nodes[1:]
    with httpx.Client(base_url=victim.base, timeout=30) as http:
        token = sign_in(http, "pub1")
        ids = []
        for _ in range(12):  # a burst through the victim, which claims some of them itself
            job = submit(
                http,
                bearer(token),
                serviceName="ndvi",
                serviceFolder="Live",
                serviceType="ImageServer",
            )
            ids.append(job["jobId"])
    victim.kill()  # SIGKILL: no shutdown, whatever it was running stays claimed
    killed = time.monotonic()
    deadline = killed + STALE + 30
    while time.monotonic() < deadline:
        states = _jobs(env["LIVEMOSAIC_CATALOG_URL"])
        pending = {i: s for i, s in states.items() if i in ids and s not in TERMINAL}
        for node in survivors:  # the others serve throughout
            version, info = _info(node.base)
            assert info["name"] == "ndvi" and version >= 1
        if not pending:
            break
        time.sleep(0.5)
    assert not pending, f"jobs left unfinished {time.monotonic() - killed:.0f} s after the kill"
    states = _jobs(env["LIVEMOSAIC_CATALOG_URL"])
    assert all(states[i] == "esriJobSucceeded" for i in ids), states
