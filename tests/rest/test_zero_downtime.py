"""Zero downtime (issue 3 §3): concurrent readers while items arrive and refreshes run back to
back, and refreshes seen by every server process within a second."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.raster import RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceSnapshot
from tests.rest.secure import (
    Running,
    ServeProcess,
    bearer,
    build_site,
    prepare_site,
    refresh,
    running,
    sign_in,
    tiles,
)

SVC = "/arcgis/rest/services/Live/live/ImageServer"
TASK = "/arcgis/rest/services/System/PublishingTools/GPServer/Refresh%20Service"
VERSION = "X-LiveMosaic-Service-Version"
CLIENTS = 4
RUN_SECONDS = 8.0


@pytest.fixture(scope="module")
def site(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ctx = build_site(tmp_path_factory.mktemp("zero"), shared_data)
    with running(ctx) as r:
        yield r


def extent_of(body: dict[str, Any]) -> tuple[float, float, float, float]:
    e = body["extent"]
    return (e["xmin"], e["ymin"], e["xmax"], e["ymax"])


def snapshot_extent(snap: ServiceSnapshot) -> tuple[float, float, float, float]:
    e = snap.summary.extent
    assert e is not None
    return (e.xmin, e.ymin, e.xmax, e.ymax)


def reader(base: str, stop: threading.Event, out: list[dict[str, Any]], worker: int) -> None:
    """Service info, exportImage and query in turn until told to stop."""
    ops = ("info", "export", "query")
    with httpx.Client(base_url=base, timeout=30) as c:
        i = worker
        while not stop.is_set():
            op = ops[i % 3]
            i += 1
            record: dict[str, Any] = {"op": op}
            try:
                if op == "info":
                    r = c.get(SVC, params={"f": "json"})
                elif op == "export":
                    r = c.get(
                        f"{SVC}/exportImage",
                        params={"f": "image", "format": "png", "size": "64,64"},
                    )
                else:
                    r = c.get(
                        f"{SVC}/query",
                        params={"f": "json", "where": "1=1", "outFields": "OBJECTID"},
                    )
            except httpx.HTTPError as exc:
                record["failure"] = repr(exc)
                out.append(record)
                continue
            record["status"] = r.status_code
            record["version"] = r.headers.get(VERSION)
            if op == "export":
                record["ok"] = r.content[:4] == b"\x89PNG"
                if not record["ok"]:
                    record["failure"] = r.text[:300]
            else:
                body = r.json()
                record["ok"] = "error" not in body
                if not record["ok"]:
                    record["failure"] = str(body)
                if op == "info":
                    record["extent"] = extent_of(body)
                    record["etag"] = r.headers.get("etag", "")
            out.append(record)


def test_no_request_fails_while_items_arrive_and_refreshes_run(
    site: Running, shared_data: Path
) -> None:
    ctx = site.ctx
    seen: dict[int, ServiceSnapshot] = {}
    first = ctx.registry.find("Live", "live")
    assert first is not None
    seen[first.version] = first

    def record(_old: ServiceSnapshot | None, new: ServiceSnapshot) -> None:
        if new.qualified_name.lower() == "live/live":
            seen[new.version] = new

    ctx.registry.subscribe(record)
    pub = site.auth("pub1")
    ingestor = Ingestor(ctx.catalog, ctx.source, [shared_data])
    stop = threading.Event()
    results: list[list[dict[str, Any]]] = [[] for _ in range(CLIENTS)]
    readers = [
        threading.Thread(target=reader, args=(site.base, stop, results[i], i))
        for i in range(CLIENTS)
    ]

    def ingest() -> None:
        for path in tiles(shared_data)[1:]:
            time.sleep(1.0)
            ingestor.add_paths("live", [path])

    adder = threading.Thread(target=ingest)
    for t in readers:
        t.start()
    adder.start()
    checked_after_success = 0
    deadline = time.monotonic() + RUN_SECONDS
    try:
        n = 0
        while time.monotonic() < deadline or adder.is_alive():
            options = '{"force": true}' if n % 2 else ""
            job = refresh(site.client, pub, "live", "Live", refreshOptions=options)
            n += 1
            assert job["jobStatus"] == "esriJobSucceeded", job
            # the new description is served as soon as the job says it succeeded
            value = site.client.get(
                f"{TASK}/jobs/{job['jobId']}/results/refreshResults",
                params={"f": "json"},
                headers=pub,
            ).json()["value"]
            generation = json.loads(value)["generation"]
            r = site.client.get(SVC, params={"f": "json"})
            assert int(r.headers[VERSION]) >= generation
            assert extent_of(r.json()) == snapshot_extent(seen[int(r.headers[VERSION])])
            checked_after_success += 1
    finally:
        stop.set()
        adder.join(timeout=60)
        for t in readers:
            t.join(timeout=60)
    records = [r for rs in results for r in rs]
    failures = [r for r in records if r.get("failure") or r.get("status") != 200 or not r.get("ok")]
    assert failures == [], failures[:5]
    assert len(records) > 100 and checked_after_success >= 3
    assert {r["op"] for r in records} == {"info", "export", "query"}
    for r in records:  # each response is consistent with exactly one published version
        version = int(r["version"])
        assert version in seen, r
        if r["op"] == "info":
            assert r["extent"] == snapshot_extent(seen[version]), r
            assert r["etag"].startswith(f'"v{version}-'), r
    versions = [int(r["version"]) for r in records]
    assert len(set(versions)) > 3  # the readers really crossed several swaps
    last = seen[max(seen)]
    assert last.summary.item_count == 4  # the last refresh saw every new item
    final = site.client.get(SVC, params={"f": "json"}).json()
    assert extent_of(final) == snapshot_extent(last) != snapshot_extent(first)


# -- several server processes on one catalog ---------------------------------------------------
def _version(c: httpx.Client, base: str) -> int:
    return int(c.get(f"{base}{SVC}", params={"f": "json"}).headers[VERSION])


def _eventually(check: Any, within: float = 1.5) -> None:
    """Wait until ``check()`` is true, at most ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.02)


def _fresh_version(base: str) -> int:
    with httpx.Client(timeout=30) as fresh:
        return _version(fresh, base)


def _add_tiles(data_dir: Path, data: Path) -> None:
    stores = open_stores(f"sqlite:///{(data_dir / 'catalog.db').resolve()}")
    try:
        report = Ingestor(stores.catalog, RasterioSource([data]), [data]).add_paths(
            "live", tiles(data)[1:]
        )
        assert report.added == 3
    finally:
        stores.close()


def test_refresh_in_one_process_is_served_by_another_within_a_second(
    shared_data: Path, tmp_path: Path
) -> None:
    data_dir = prepare_site(tmp_path / "site", shared_data)
    a = ServeProcess(data_dir, shared_data, tmp_path / "a.log")
    b = ServeProcess(data_dir, shared_data, tmp_path / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        with httpx.Client(timeout=30) as c:
            with httpx.Client(base_url=a.base) as ca:
                token = sign_in(ca, "pub1")
            before = c.get(f"{b.base}{SVC}", params={"f": "json"}).json()
            _add_tiles(data_dir, shared_data)
            with httpx.Client(base_url=a.base, timeout=30) as ca:
                job = refresh(ca, bearer(token), "live", "Live")
            assert job["jobStatus"] == "esriJobSucceeded"
            done = time.monotonic()
            target = _version(c, a.base)
            while _version(c, b.base) < target:
                assert time.monotonic() - done < 2.0, "process B did not pick up the refresh"
                time.sleep(0.02)
            elapsed = time.monotonic() - done
            assert elapsed < 1.5, f"B served the refresh after {elapsed:.2f} s"
            after_b = c.get(f"{b.base}{SVC}", params={"f": "json"}).json()
            after_a = c.get(f"{a.base}{SVC}", params={"f": "json"}).json()
            assert after_b["extent"] == after_a["extent"] != before["extent"]
            # one secret and one job store: B accepts A's token and shows A's job
            seen_by_b = c.get(
                f"{b.base}{TASK}/jobs/{job['jobId']}", params={"f": "json"}, headers=bearer(token)
            ).json()
            assert seen_by_b["jobStatus"] == "esriJobSucceeded"
            # services created and deleted through A's admin API come and go in B too
            with httpx.Client(base_url=a.base, timeout=30) as ca:
                admin = bearer(sign_in(ca, "admin"))
                service = {
                    "serviceName": "fresh",
                    "type": "ImageServer",
                    "properties": {"path": "livemosaic:tiles"},
                }
                made = ca.post(
                    "/arcgis/admin/services/createService",
                    data={"f": "json", "service": json.dumps(service)},
                    headers=admin,
                )
                assert made.json() == {"status": "success"}
                _eventually(
                    lambda: (
                        "name"
                        in c.get(
                            f"{b.base}/arcgis/rest/services/fresh/ImageServer", params={"f": "json"}
                        ).json()
                    )
                )
                gone = ca.post(
                    "/arcgis/admin/services/live.ImageServer/delete",
                    data={"f": "json"},
                    headers=admin,
                )
                assert gone.json()["status"] == "error"  # live is in the Live folder
                gone = ca.post(
                    "/arcgis/admin/services/Live/live.ImageServer/delete",
                    data={"f": "json"},
                    headers=admin,
                )
                assert gone.json() == {"status": "success"}
                _eventually(
                    lambda: (
                        c.get(f"{b.base}{SVC}", params={"f": "json"})
                        .json()
                        .get("error", {})
                        .get("code")
                        == 404
                    )
                )
    finally:
        a.stop()
        b.stop()


def test_serve_with_two_workers(shared_data: Path, tmp_path: Path) -> None:
    data_dir = prepare_site(tmp_path / "site", shared_data)
    server = ServeProcess(data_dir, shared_data, tmp_path / "serve.log", "--workers", "2")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=30) as c:
            token = sign_in(c, "pub1")
            _add_tiles(data_dir, shared_data)
            job = refresh(c, bearer(token), "live", "Live")
            assert job["jobStatus"] == "esriJobSucceeded"
            target = _version(c, "")
            done = time.monotonic()
            versions: set[int] = set()
            while time.monotonic() - done < 1.5:  # both workers serve the new version by then
                # a new connection per request, so both worker processes get asked
                versions = {_fresh_version(server.base) for _ in range(10)}
                if versions == {target}:
                    break
                time.sleep(0.05)
            assert versions == {target}, versions
            body = c.get(SVC, params={"f": "json"}).json()
            assert body["extent"]["xmax"] > 0
    finally:
        server.stop()
