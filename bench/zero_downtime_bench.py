"""Zero downtime: concurrent clients while items arrive and refreshes run back to back.

Issue 3 §3. A ``livemosaic serve`` subprocess on 127.0.0.1 serves two live services over real
sample rasters (``LIVEMOSAIC_SAMPLE_DATA`` or ``../shared/data`` next to the repository):

* ``Live/tiles``: the four ``mosaic/rgb*.tif`` tiles; the extent grows as tiles arrive;
* ``Live/ndvi``: the MODIS NDVI series (date in the file name); the time extent grows. After
  the six real dates, copies of them under later dates keep the series growing.

Files are copied into a temporary data folder and added with ``Ingestor`` (one file at a time,
as a watcher would). ``--clients`` threads send service info, ``exportImage`` (PNG) and
``query`` to both services in turn. After a 3 s warm-up (checked, not timed), phase A
(``--seconds``): no adds, no refreshes; phase B (``--seconds``): a file added every
``--add-every`` seconds and Refresh Service jobs back to back through the REST GP endpoint
(publisher token, polled every 20 ms).

Every response is checked: HTTP 200, no ``error`` key (a PNG for exportImage), the
``X-LiveMosaic-Service-Version`` header present; a service-info body must show exactly the
extent and time extent of the stored snapshot of that version. After each job succeeds, the
service info fetched at once must already show the new version's extent. The script prints
requests, failures, inconsistencies and p50/p99 per phase and request type, and exits 1 if
anything failed or was inconsistent.

    .venv/bin/python bench/zero_downtime_bench.py            # 2 x 20 s phases (~1 min)
    .venv/bin/python bench/zero_downtime_bench.py --quick    # 2 x 5 s phases
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import Latency, ServerProcess, machine_line, ms, parallel_capacity, table

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition, ServiceSnapshot
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.security import User, hash_password

ROOT = "/arcgis"
FOLDER = "Live"
SERVICES = ("tiles", "ndvi")
TASK = f"{ROOT}/rest/services/System/PublishingTools/GPServer/Refresh%20Service"
VERSION = "X-LiveMosaic-Service-Version"
NDVI_PATTERN = r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
NDVI_NAME = "TERRA_MODIS_012010_NDVI_{}.jp2"
USER = "bench_publisher"
TERMINAL = ("esriJobSucceeded", "esriJobFailed", "esriJobCancelled", "esriJobTimedOut")
OPS = ("info", "export", "query")
REPO = Path(__file__).resolve().parent.parent
WARM_UP = 3.0  # seconds of client requests before phase A, not counted

Extents = tuple[tuple[float, float, float, float] | None, tuple[int, int] | None]


def sample_data() -> Path:
    """The shared sample-data folder (env ``LIVEMOSAIC_SAMPLE_DATA`` or ../shared/data)."""
    env = os.environ.get("LIVEMOSAIC_SAMPLE_DATA")
    folder = Path(env) if env else REPO.parent / "shared" / "data"
    if not (folder / "mosaic").is_dir() or not (folder / "timeseries" / "modis_ndvi").is_dir():
        raise SystemExit(
            f"sample data not found at {folder}: set LIVEMOSAIC_SAMPLE_DATA to the shared data "
            "folder (it holds mosaic/ and timeseries/modis_ndvi/)"
        )
    return folder


def arrivals(data: Path) -> Iterator[tuple[str, Path, str]]:
    """(dataset, source file, name in the data folder) in arrival order, without end.

    The first tile and the first NDVI date are there from the start; then NDVI dates and tiles
    alternate, and after the six real dates the NDVI files come back under later dates (16
    days apart), so the time extent keeps growing.
    """
    tiles = sorted((data / "mosaic").glob("rgb*.tif"))
    ndvi = sorted((data / "timeseries" / "modis_ndvi").glob("*.jp2"))
    yield "tiles", tiles[0], tiles[0].name
    yield "ndvi", ndvi[0], ndvi[0].name
    rest_tiles = iter(tiles[1:])
    for source in ndvi[1:]:
        yield "ndvi", source, source.name
        tile = next(rest_tiles, None)
        if tile is not None:
            yield "tiles", tile, tile.name
    last = dt.date.fromisoformat(ndvi[-1].stem.rsplit("_", 1)[-1])
    k = 0
    while True:
        k += 1
        when = last + dt.timedelta(days=16 * k)
        yield "ndvi", ndvi[k % len(ndvi)], NDVI_NAME.format(when.isoformat())


@dataclass
class Site:
    """The catalog side: stores, ingestor, incoming folder and the known snapshot versions."""

    stores: Stores
    ingestor: Ingestor
    incoming: Path
    arrivals: Iterator[tuple[str, Path, str]]
    versions: dict[tuple[str, int], Extents] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SERVICES, 0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_next(self) -> str:
        """Copy the next arriving file into the data folder and add it; returns its name."""
        dataset, source, name = next(self.arrivals)
        target = self.incoming / dataset / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        report = self.ingestor.add_paths(dataset, [target])
        if report.added < 1:
            raise RuntimeError(f"{name} was not added: {report.rejected}")
        with self.lock:
            self.added[dataset] += 1
        return f"{dataset}/{name}"

    def record_latest(self, service: str) -> ServiceSnapshot:
        """Note the extents of the service's newest stored snapshot under its version."""
        snap = self.stores.catalog.latest_snapshot(FOLDER, service)
        if snap is None:
            raise RuntimeError(f"{FOLDER}/{service} has no stored snapshot")
        with self.lock:
            self.versions[(service, snap.version)] = snapshot_extents(snap)
        return snap

    def known(self, service: str, version: int) -> Extents | None:
        """The extents of a recorded version (None if never seen)."""
        with self.lock:
            return self.versions.get((service, version))


def snapshot_extents(snap: ServiceSnapshot) -> Extents:
    """(extent, time extent) of a snapshot as service info shows them."""
    e = snap.summary.extent
    extent = None if e is None else (e.xmin, e.ymin, e.xmax, e.ymax)
    t = snap.summary.time_extent
    return extent, None if t is None else (int(t[0]), int(t[1]))


def body_extents(body: dict[str, Any]) -> Extents:
    """(extent, time extent) of a service-info body."""
    e = body.get("extent") or {}
    try:
        extent = (float(e["xmin"]), float(e["ymin"]), float(e["xmax"]), float(e["ymax"]))
    except (KeyError, TypeError):  # an empty envelope has null coordinates
        extent = None
    t = (body.get("timeInfo") or {}).get("timeExtent")
    return extent, None if not t else (int(t[0]), int(t[1]))


def setup(work: Path, data: Path, password: str) -> Site:
    """Data folder and catalog: two datasets with their first file, two live services, a user."""
    incoming = work / "incoming"
    incoming.mkdir(parents=True)
    stores = open_stores(f"sqlite:///{(work / 'site' / 'catalog.db').resolve()}")
    ingestor = Ingestor(stores.catalog, RasterioSource([incoming]), [incoming])
    ingestor.create_dataset("tiles")
    ingestor.create_dataset("ndvi", time_pattern=NDVI_PATTERN)
    site = Site(stores, ingestor, incoming, arrivals(data))
    site.add_next()
    site.add_next()
    publisher = Publisher(stores.catalog, ServiceRegistry(), RasterioProjector())
    for name in SERVICES:
        publisher.publish(
            ServiceDefinition(
                name=name, folder=FOLDER, dataset=name, properties={"hasLiveData": "true"}
            )
        )
        site.record_latest(name)
    stores.users.add_user(User(USER, "publisher", hash_password(password)))
    return site


# -- clients --------------------------------------------------------------------------------------
@dataclass(slots=True)
class Record:
    """One client request and what its response showed."""

    phase: str
    op: str
    service: str
    seconds: float
    version: int | None = None
    problem: str | None = None
    extents: Extents | None = None
    etag: str = ""


def one_request(c: httpx.Client, op: str, service: str, record: Record) -> None:
    """Send one request and check the response (problems go into ``record``)."""
    svc = f"{ROOT}/rest/services/{FOLDER}/{service}/ImageServer"
    if op == "info":
        r = c.get(svc, params={"f": "json"})
    elif op == "export":
        params = {"f": "image", "format": "png", "size": "256,256"}
        r = c.get(f"{svc}/exportImage", params=params)
    else:
        params = {"f": "json", "where": "1=1", "outFields": "OBJECTID,Name"}
        r = c.get(f"{svc}/query", params=params)
    header = r.headers.get(VERSION)
    record.version = int(header) if header and header.isdigit() else None
    if r.status_code != 200:
        record.problem = f"HTTP {r.status_code}: {r.text[:200]}"
    elif op == "export":
        if r.content[:4] != b"\x89PNG":
            record.problem = f"not a PNG: {r.headers.get('content-type')} {r.text[:200]}"
    else:
        body = r.json()
        if "error" in body:
            record.problem = f"error body: {json.dumps(body)[:200]}"
        elif op == "info":
            record.extents = body_extents(body)
            record.etag = r.headers.get("etag", "")
    if record.problem is None and record.version is None:
        record.problem = f"no {VERSION} header"


def client_loop(
    base: str, worker: int, phase: list[str], stop: threading.Event, out: list[Record]
) -> None:
    """Info, exportImage and query on both services in turn until told to stop."""
    i = worker
    with httpx.Client(base_url=base, timeout=60.0, trust_env=False) as c:
        while not stop.is_set():
            op, service = OPS[i % 3], SERVICES[(i // 3) % 2]
            i += 1
            record = Record(phase[0], op, service, 0.0)
            t0 = time.perf_counter()
            try:
                one_request(c, op, service, record)
            except (httpx.HTTPError, ValueError) as exc:
                record.problem = f"{type(exc).__name__}: {exc}"[:200]
            record.seconds = time.perf_counter() - t0
            out.append(record)


# -- adds and refreshes ---------------------------------------------------------------------------
@dataclass
class Refreshes:
    """What the refresh loop did."""

    jobs: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # info after success not yet the new version
    checked: int = 0
    requests: int = 0  # HTTP requests the refresh loop sent (submit, polls, results, info)
    adds: list[str] = field(default_factory=list)
    add_errors: list[str] = field(default_factory=list)


def sign_in(c: httpx.Client, password: str) -> dict[str, str]:
    """A publisher token from generateToken, as the headers later requests carry."""
    form = {"username": USER, "password": password, "client": "referer", "referer": "http"}
    r = c.post(f"{ROOT}/tokens/generateToken", data={**form, "f": "json"})
    body = r.json()
    if "token" not in body:
        raise RuntimeError(f"generateToken gave no token: HTTP {r.status_code} {r.text[:300]}")
    return {"Referer": "http", "X-Esri-Authorization": f"Bearer {body['token']}"}


def refresh_once(
    c: httpx.Client, auth: dict[str, str], site: Site, service: str, force: bool, out: Refreshes
) -> None:
    """One job: submit, poll to the end, record the new version, check info shows it at once."""
    form = {
        "serviceName": service,
        "serviceType": "ImageServer",
        "serviceFolder": FOLDER,
        "refreshOptions": json.dumps({"force": True}) if force else "",
        "f": "json",
    }
    t0 = time.perf_counter()
    job = c.post(f"{TASK}/submitJob", data=form, headers=auth).json()
    if "jobId" not in job:
        out.failures.append(f"submitJob: {json.dumps(job)[:300]}")
        return
    url = f"{TASK}/jobs/{job['jobId']}"
    status = str(job.get("jobStatus"))
    while status not in TERMINAL:
        if time.perf_counter() - t0 > 30:
            out.failures.append(f"job {job['jobId']} still {status} after 30 s")
            return
        time.sleep(0.02)
        status = str(c.get(url, params={"f": "json"}, headers=auth).json().get("jobStatus"))
    took = time.perf_counter() - t0
    if status != "esriJobSucceeded":
        body = c.get(url, params={"f": "json", "returnMessages": "true"}, headers=auth).json()
        out.failures.append(f"job {job['jobId']} {status}: {body.get('messages')}"[:400])
        return
    out.jobs.append(took)
    value = c.get(f"{url}/results/refreshResults", params={"f": "json"}, headers=auth).json()
    generation = int(json.loads(value["value"])["generation"])
    snap = site.record_latest(service)
    if snap.version != generation:
        out.stale.append(f"{service}: job generation {generation}, stored {snap.version}")
    r = c.get(f"{ROOT}/rest/services/{FOLDER}/{service}/ImageServer", params={"f": "json"})
    served = int(r.headers.get(VERSION, "0"))
    shown = body_extents(r.json())
    out.checked += 1
    if served < generation or shown != site.known(service, served):
        out.stale.append(
            f"{service}: job generation {generation} succeeded, info then showed version "
            f"{served} with {shown}, expected {site.known(service, generation)}"
        )


def refresh_loop(
    base: str, password: str, site: Site, stop: threading.Event, out: Refreshes
) -> None:
    """Refresh Service jobs back to back, alternating services and the force option."""

    def count(_request: httpx.Request) -> None:
        out.requests += 1

    hooks = {"request": [count]}
    with httpx.Client(base_url=base, timeout=60.0, trust_env=False, event_hooks=hooks) as c:
        try:
            auth = sign_in(c, password)
        except (httpx.HTTPError, ValueError, RuntimeError) as exc:
            out.failures.append(f"sign-in: {type(exc).__name__}: {exc}"[:300])
            return
        n = 0
        while not stop.is_set():
            service = SERVICES[n % 2]
            try:
                refresh_once(c, auth, site, service, force=(n // 2) % 2 == 1, out=out)
            except (httpx.HTTPError, ValueError, KeyError, RuntimeError) as exc:
                out.failures.append(f"refresh of {service}: {type(exc).__name__}: {exc}"[:300])
            n += 1


def add_loop(site: Site, every: float, stop: threading.Event, out: Refreshes) -> None:
    """Add one arriving file every ``every`` seconds."""
    while not stop.wait(every):
        try:
            out.adds.append(site.add_next())
        except Exception as exc:  # reported; the benchmark goes on
            out.add_errors.append(f"{type(exc).__name__}: {exc}"[:300])


# -- checks and report ----------------------------------------------------------------------------
def inconsistencies(records: list[Record], site: Site) -> list[str]:
    """Responses that do not match exactly one stored snapshot version."""
    found = []
    for r in records:
        if r.problem is not None or r.version is None:
            continue
        expected = site.known(r.service, r.version)
        if expected is None:
            found.append(f"{r.op} {r.service}: version {r.version} was never published")
        elif r.op == "info":
            if r.extents != expected:
                found.append(
                    f"info {r.service} v{r.version}: shows {r.extents}, snapshot has {expected}"
                )
            elif r.etag and not r.etag.startswith(f'"v{r.version}-'):
                found.append(f"info {r.service} v{r.version}: ETag {r.etag}")
    return found


def report(records: list[Record], phases: dict[str, float]) -> int:
    """Print the latency table; returns the number of failed requests."""
    rows = []
    failed = 0
    for phase, seconds in phases.items():
        for op in (*OPS, "all"):
            subset = [r for r in records if r.phase == phase and op in (r.op, "all")]
            ok = [r.seconds for r in subset if r.problem is None]
            bad = len(subset) - len(ok)
            if op == "all":
                failed += bad
            lat = Latency.of(ok)
            rows.append(
                [phase, op, str(len(subset)), f"{len(subset) / seconds:.1f}", str(bad)]
                + [ms(lat.p50), ms(lat.p99), ms(lat.mean), ms(lat.max)]
            )
    header = ["phase", "request", "n", "req/s", "failed", "p50 ms", "p99 ms", "mean ms", "max ms"]
    print(table(header, rows))
    return failed


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--add-every", type=float, default=1.0, help="seconds between adds")
    parser.add_argument("--work-dir", type=Path, default=None, help="parent of the temp folder")
    parser.add_argument("--quick", action="store_true", help="two 5 s phases")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 5.0
    data = sample_data()
    print("zero_downtime_bench: requests while items arrive and refreshes run back to back")
    print(machine_line())
    print(f"two threads did {parallel_capacity():.2f}x the work of one (2.00 = two free cores)")
    work = Path(tempfile.mkdtemp(prefix="livemosaic-zero-downtime-", dir=args.work_dir))
    password = secrets.token_urlsafe(16)
    site: Site | None = None
    server: ServerProcess | None = None
    try:
        site = setup(work, data, password)
        env = {
            "LIVEMOSAIC_CATALOG_URL": f"sqlite:///{(work / 'site' / 'catalog.db').resolve()}",
            "LIVEMOSAIC_ROOT": ROOT.strip("/"),
        }
        cli = ["--data-dir", str(work / "site"), "--data-folder", str(site.incoming)]
        server = ServerProcess(cli, env, REPO, work / "server.log")
        server.start(f"{ROOT}/rest/services/{FOLDER}/tiles/ImageServer?f=json")
        return run(server.base_url, site, password, args)
    finally:
        if server is not None:
            server.stop()
        if site is not None:
            site.stores.close()
        shutil.rmtree(work, ignore_errors=True)


def run(base: str, site: Site, password: str, args: argparse.Namespace) -> int:
    """Phase A (readers only), phase B (readers, adds, refreshes); checks and report."""
    phase = ["warm-up"]
    stop_clients = threading.Event()
    outs: list[list[Record]] = [[] for _ in range(args.clients)]
    clients = [
        threading.Thread(target=client_loop, args=(base, i, phase, stop_clients, outs[i]))
        for i in range(args.clients)
    ]
    refreshes = Refreshes()
    stop_b = threading.Event()
    writers = [
        threading.Thread(target=refresh_loop, args=(base, password, site, stop_b, refreshes)),
        threading.Thread(target=add_loop, args=(site, args.add_every, stop_b, refreshes)),
    ]
    durations: dict[str, float] = {}
    try:
        for t in clients:
            t.start()
        time.sleep(WARM_UP)  # first reads open files and fill caches: not counted
        phase[0] = "A"
        t0 = time.perf_counter()
        time.sleep(args.seconds)
        phase[0] = "B"
        t1 = time.perf_counter()
        durations["A"] = t1 - t0
        for t in writers:
            t.start()
        time.sleep(args.seconds)
    finally:
        stop_b.set()
        for t in writers:
            if t.ident is not None:
                t.join(timeout=60)
        stop_clients.set()
        for t in clients:
            if t.ident is not None:
                t.join(timeout=60)
    durations["B"] = time.perf_counter() - t1
    # a last refresh of each service: it must see every file added
    final = Refreshes()
    with httpx.Client(base_url=base, timeout=60.0, trust_env=False) as c:
        auth = sign_in(c, password)
        for service in SERVICES:
            refresh_once(c, auth, site, service, force=False, out=final)
            snap = site.record_latest(service)
            if snap.summary.item_count != site.added[service]:
                final.failures.append(
                    f"{service}: last snapshot counts {snap.summary.item_count} items, "
                    f"{site.added[service]} were added"
                )
    records = [r for out in outs for r in out]
    print(
        f"\n{args.clients} clients; phase A {durations['A']:.1f} s without refreshes, "
        f"phase B {durations['B']:.1f} s with adds every {args.add_every:g} s and refresh "
        "jobs back to back"
    )
    failed = report(records, durations)
    bad = inconsistencies(records, site)
    warm = sum(r.phase not in durations for r in records)
    warm_bad = sum(r.phase not in durations and r.problem is not None for r in records)
    jobs = Latency.of(refreshes.jobs)
    versions = {
        s: sorted({r.version for r in records if r.service == s and r.version}) for s in SERVICES
    }
    print(
        f"\nphase B: {len(refreshes.adds)} files added ({len(refreshes.add_errors)} add errors), "
        f"{jobs.n} refresh jobs succeeded ({len(refreshes.failures)} failed), "
        f"submit->succeeded p50 {ms(jobs.p50)} ms, p99 {ms(jobs.p99)} ms, max {ms(jobs.max)} ms"
    )
    for s in SERVICES:
        seen = versions[s]
        span = f"{seen[0]}..{seen[-1]}" if seen else "-"
        print(f"  {FOLDER}/{s}: {len(seen)} snapshot versions served ({span})")
    rate = refreshes.requests / durations["B"]
    print(
        f"  the refresh loop's own requests (sign-in, submit, polls, results, info): "
        f"{refreshes.requests} ({rate:.1f}/s), served on top of the clients'"
    )
    print(
        f"service info right after each job: {refreshes.checked} checked, "
        f"{len(refreshes.stale)} not yet showing the new version"
    )
    print(
        f"requests served {len(records)} ({warm} in the warm-up), failures {failed + warm_bad}, "
        f"inconsistencies {len(bad)}, "
        f"final check problems {len(final.failures) + len(final.stale)}"
    )
    problems = (
        [r.problem for r in records if r.problem]
        + bad
        + refreshes.failures
        + refreshes.stale
        + refreshes.add_errors
        + final.failures
        + final.stale
    )
    for p in problems[:10]:
        print(f"  problem: {p}")
    print(machine_line())
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
