"""Several server processes on one catalog, driven by the PostgreSQL event bus (issue 8 §3).

Two ``livemosaic serve`` processes share a catalog and a NOTIFY channel; their snapshot
polling is switched off (an hour), so only the bus can carry changes. A refresh through node A
must be served by node B, and announced to the WebSocket clients of both, within a second;
items changed elsewhere reach the clients of every node; a service deleted through A is gone
from B.

``CATALOGS`` lists the catalog stores the scenario runs on; each entry gives the catalog URL
for a test's work folder.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.events.postgres import PostgresEventBus
from livemosaic.adapters.raster import RasterioSource
from livemosaic.core.events import ItemsChanged
from livemosaic.core.ingest import Ingestor
from livemosaic.rest.notify import WS_PATH
from tests.e2e.test_live_ingest import Notifications
from tests.pgbus import postgres_or_skip, unique_channel
from tests.rest.secure import BIN, ROOT, ServeProcess, bearer, prepare_site, refresh, sign_in, tiles

SVC = f"{ROOT}/rest/services/Live/live/ImageServer"
VERSION = "X-LiveMosaic-Service-Version"
WITHIN = 1.0  # seconds: issue 8 §3


def sqlite_catalog(work: Path) -> str:
    """The site's SQLite catalog (the default location in its data folder)."""
    return f"sqlite:///{(work / 'site' / 'data' / 'catalog.db').resolve()}"


CATALOGS: dict[str, Callable[[Path], str]] = {"sqlite": sqlite_catalog}


@pytest.fixture(params=sorted(CATALOGS))
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return CATALOGS[request.param](tmp_path)


def _version(base: str) -> int:
    with httpx.Client(timeout=30) as c:  # a fresh connection each time
        return int(c.get(f"{base}{SVC}", params={"f": "json"}).headers[VERSION])


def _info(base: str) -> dict[str, Any]:
    with httpx.Client(timeout=30) as c:
        return dict(c.get(f"{base}{SVC}", params={"f": "json"}).json())


def _arrival(
    clients: list[Notifications], accept: Callable[[dict[str, Any]], bool], event: str
) -> list[float | None]:
    """Wait (at most 5 s) until each client got a matching message; their arrival times."""
    deadline = time.monotonic() + 5
    while True:
        times = [c.first(accept, 0.0, event) for c in clients]
        if all(t is not None for t in times) or time.monotonic() > deadline:
            return times
        time.sleep(0.01)


@pytest.fixture
def nodes(
    catalog_url: str, shared_data: Path, tmp_path: Path
) -> Iterator[tuple[list[ServeProcess], str, str]]:
    bus_url = postgres_or_skip()
    channel = unique_channel()
    data_dir = prepare_site(tmp_path / "site", shared_data, catalog_url=catalog_url)
    env = {
        "LIVEMOSAIC_CATALOG_URL": catalog_url,
        "LIVEMOSAIC_EVENT_BUS": bus_url,
        "LIVEMOSAIC_EVENT_CHANNEL": channel,
        "LIVEMOSAIC_SNAPSHOT_POLL_SECONDS": "3600",  # only the bus can tell
    }
    started = [
        ServeProcess(data_dir, shared_data, tmp_path / f"node{i}.log", env=env) for i in range(2)
    ]
    try:
        for node in started:
            node.wait_ready()
        yield started, bus_url, channel
    finally:
        for node in started:
            node.stop()


def test_a_refresh_on_one_node_reaches_every_node_and_its_clients(
    nodes: tuple[list[ServeProcess], str, str], catalog_url: str, shared_data: Path
) -> None:
    servers, bus_url, channel = nodes
    a, b = servers
    clients = [
        Notifications(n.base.replace("http://", "ws://") + ROOT + WS_PATH, ["Live/live"])
        for n in servers
    ]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for t in threads:
        t.start()
    try:
        for c in clients:
            assert c.ready.wait(15) and not c.error, c.error
        before = _version(b.base)
        stores = open_stores(catalog_url)
        try:  # new files in the live dataset, as a watcher would add them
            report = Ingestor(stores.catalog, RasterioSource([shared_data]), [shared_data])
            assert report.add_paths("live", tiles(shared_data)[1:]).added == 3
        finally:
            stores.close()
        with httpx.Client(base_url=a.base, timeout=30) as ca:
            token = sign_in(ca, "pub1")
            job = refresh(ca, bearer(token), "live", "Live")
        done = time.monotonic()
        assert job["jobStatus"] == "esriJobSucceeded", job
        target = _version(a.base)
        assert target > before
        while _version(b.base) < target:
            assert time.monotonic() - done < 5, "node B did not serve the refresh"
            time.sleep(0.01)
        served = time.monotonic() - done
        told = _arrival(clients, lambda m: m.get("generation") == target, event="serviceRefreshed")
        assert all(t is not None for t in told), [c.messages for c in clients]
        late = [max(0.0, t - done) for t in told if t is not None]
        print(f"node B served the refresh {served:.3f} s after the job; clients told {late}")
        assert served < WITHIN and max(late) < WITHIN
        message = next(m for at, m in clients[1].messages if m.get("generation") == target)
        assert message["itemCount"] == 4 and message["service"] == "Live/live.ImageServer"
        with httpx.Client(timeout=30) as c:
            extent_b = c.get(f"{b.base}{SVC}", params={"f": "json"}).json()["extent"]
            extent_a = c.get(f"{a.base}{SVC}", params={"f": "json"}).json()["extent"]
        assert extent_a == extent_b

        # items changed inside the extent, seen by a process outside the servers (a watcher)
        watcher = PostgresEventBus(bus_url, channel=channel)
        watcher.start()
        try:
            sent = time.monotonic()
            watcher.publish(ItemsChanged("Live", "live", 2, 0))
            told = _arrival(clients, lambda m: m.get("itemsAdded") == 2, event="itemsChanged")
        finally:
            watcher.close()
        assert all(t is not None and t - sent < WITHIN for t in told), told

        # an edit from the command line (another process on the bus) reaches both nodes
        edited = subprocess.run(
            [str(BIN), "--data-dir", str(a.data_dir), "service", "set", "Live/live",
             "--description", "edited from the command line"],
            env=a.environ, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert edited.returncode == 0, edited.stderr
        cli_done = time.monotonic()
        for node in servers:
            while _info(node.base).get("description") != "edited from the command line":
                assert time.monotonic() - cli_done < WITHIN, "an edit from the CLI was not seen"
                time.sleep(0.01)

        # a service deleted through A is gone from B
        with httpx.Client(base_url=a.base, timeout=30) as ca:
            admin = bearer(sign_in(ca, "admin"))
            gone = ca.post(
                f"{ROOT}/admin/services/Live/live.ImageServer/delete",
                data={"f": "json"},
                headers=admin,
            )
        assert gone.json() == {"status": "success"}
        deleted = time.monotonic()
        with httpx.Client(timeout=30) as c:
            while "error" not in c.get(f"{b.base}{SVC}", params={"f": "json"}).json():
                assert time.monotonic() - deleted < WITHIN, "B still serves the deleted service"
                time.sleep(0.01)
    finally:
        for c in clients:
            c.stop.set()
        for t in threads:
            t.join(10)
    for node in servers:
        log = node.log_path.read_text()
        assert "Traceback" not in log, log


def test_serve_workers_follow_each_other_over_the_bus(
    catalog_url: str, shared_data: Path, tmp_path: Path
) -> None:
    """``serve --workers 2``: whichever worker runs the job, both serve the refresh."""
    env = {
        "LIVEMOSAIC_CATALOG_URL": catalog_url,
        "LIVEMOSAIC_EVENT_BUS": postgres_or_skip(),
        "LIVEMOSAIC_EVENT_CHANNEL": unique_channel(),
        "LIVEMOSAIC_SNAPSHOT_POLL_SECONDS": "3600",
    }
    data_dir = prepare_site(tmp_path / "site", shared_data, catalog_url=catalog_url)
    server = ServeProcess(data_dir, shared_data, tmp_path / "serve.log", "--workers", "2", env=env)
    try:
        server.wait_ready()
        stores = open_stores(catalog_url)
        try:
            ingestor = Ingestor(stores.catalog, RasterioSource([shared_data]), [shared_data])
            assert ingestor.add_paths("live", tiles(shared_data)[1:]).added == 3
        finally:
            stores.close()
        with httpx.Client(base_url=server.base, timeout=30) as c:
            job = refresh(c, bearer(sign_in(c, "pub1")), "live", "Live")
        assert job["jobStatus"] == "esriJobSucceeded", job
        done = time.monotonic()
        target = int(json.loads(_job_result(server.base, job))["generation"])
        versions: set[int] = set()
        while time.monotonic() - done < WITHIN:
            versions = {_version(server.base) for _ in range(10)}  # both workers get asked
            if versions == {target}:
                break
            time.sleep(0.02)
        assert versions == {target}, versions
    finally:
        server.stop()


def _job_result(base: str, job: dict[str, Any]) -> str:
    with httpx.Client(base_url=base, timeout=30) as c:
        headers = bearer(sign_in(c, "pub1"))
        url = f"{ROOT}/rest/services/System/PublishingTools/GPServer/Refresh%20Service"
        r = c.get(
            f"{url}/jobs/{job['jobId']}/results/refreshResults",
            params={"f": "json"},
            headers=headers,
        )
        return str(r.json()["value"])
