"""Refresh Service cost vs catalog size: 1k and 1M items, in-process and over HTTP.

Issue 3 §2: "refresh of a 1M-item dataset is as fast as of a 1k-item one; submitJob to
esriJobSucceeded should take well under a second". For each size (``--items``) it builds an
SQLite catalog of synthetic single-band items through the store's normal ``add_items`` path
(batches of ``--batch`` items, one transaction each, so the dataset summary is kept by the
store exactly as in production), publishes ``Bench/Items_<n>`` with ``hasLiveData`` and adds
a publisher user. A build still running after ``--build-seconds`` stops there and the report
names the size reached, so the run stays bounded on a busy machine. Then:

1. in-process: ``Refresher.refresh`` with ``{"force": true}`` (summary read, snapshot build,
   persist, swap), ``--refreshes`` times per size in alternating rounds, plus ``summary()``;
2. over HTTP: one ``livemosaic serve`` subprocess per catalog on 127.0.0.1; a token from
   ``generateToken``; ``--jobs`` Refresh Service jobs per size (``submitJob``, then
   ``jobs/{id}`` polled at once and every ``--poll`` seconds until ``esriJobSucceeded``),
   alternating rounds; then the same jobs' created/started/finished times from the job store.

It prints p50/p99 per size and the ratio largest / smallest (1.00 = does not grow). The
catalogs live in a temporary folder removed at the end; the servers are stopped.

    .venv/bin/python bench/refresh_bench.py            # 1k and 1M items (5-8 min, mostly the build)
    .venv/bin/python bench/refresh_bench.py --quick    # 1k and 100k items (under 1 min)
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import Latency, ServerProcess, machine_line, ms, parallel_capacity, table

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.adapters.raster import RasterioProjector
from livemosaic.core.models import (
    BandStats,
    Extent,
    MosaicDataset,
    RasterItem,
    ServiceDefinition,
)
from livemosaic.core.publishing import Publisher
from livemosaic.core.refresh import Refresher, RefreshRequest
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.security import User, hash_password

ROOT = "/arcgis"
TASK = f"{ROOT}/rest/services/System/PublishingTools/GPServer/Refresh%20Service"
FOLDER = "Bench"
DATASET = "bench_refresh"
USER = "bench_publisher"
ITEM_SIZE = 1000.0  # metres
STEP = 950.0  # neighbours overlap by 5 %
X0, Y0 = 1_000_000.0, 6_000_000.0  # top-left corner, EPSG:3857
T0 = 1_700_000_000_000  # epoch ms of the first acquisition
MINUTE = 60_000
FORCE = json.dumps({"force": True})
TERMINAL = ("esriJobSucceeded", "esriJobFailed", "esriJobCancelled", "esriJobTimedOut")
REPO = Path(__file__).resolve().parent.parent


def synthetic_item(index: int, side: int) -> RasterItem:
    """Item ``index`` of a ``side``-wide grid: a 1000 m single-band scene, one a minute."""
    col, row = index % side, index // side
    xmin, ymax = X0 + col * STEP, Y0 - row * STEP
    ext = Extent(xmin, ymax - ITEM_SIZE, xmin + ITEM_SIZE, ymax)
    ring = (
        (ext.xmin, ext.ymax),
        (ext.xmax, ext.ymax),
        (ext.xmax, ext.ymin),
        (ext.xmin, ext.ymin),
        (ext.xmin, ext.ymax),
    )
    path = f"/bench/live/r{row:04d}/scene_{index:07d}.tif"
    stats = BandStats(float(index % 11), 250.0 - index % 5, 120.0 + index % 13, 30.0, 1_000_000)
    return RasterItem(
        path=path,
        uri=path,
        name=f"scene_{index:07d}",
        bands=(1,),
        footprint=ring,
        extent=ext,
        native_crs="EPSG:3857",
        native_extent=ext,
        width=1000,
        height=1000,
        cell_size_x=1.0,
        cell_size_y=1.0,
        low_ps=1.0,
        high_ps=8.0,
        pixel_type="U8",
        band_names=("NDVI",),
        nodata=0.0,
        mask_kind="nodata",
        stats=(stats,),
        file_size=1_000_000 + index,
        file_mtime_ns=1_700_000_000_000_000_000 + index,
        time=T0 + index * MINUTE,
        overview_count=3,
    )


@dataclass
class Site:
    """One catalog of ``size`` items with its published live service."""

    size: int
    folder: Path
    build_seconds: float
    batch_ms_per_1000: tuple[float, float]  # first and last batch, per 1000 items
    stores: Stores | None
    refresher: Refresher | None
    inputs: RefreshRequest
    password: str
    refresh: list[float] = field(default_factory=list)
    summary: list[float] = field(default_factory=list)
    submit: list[float] = field(default_factory=list)
    jobs: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)  # server side: created -> started
    running: list[float] = field(default_factory=list)  # server side: started -> finished
    server_total: list[float] = field(default_factory=list)  # server side: created -> finished
    errors: list[str] = field(default_factory=list)
    last_results: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The service name."""
        return f"Items_{self.size}"

    @property
    def url(self) -> str:
        """The catalog URL."""
        return f"sqlite:///{(self.folder / 'catalog.db').resolve()}"

    def db_megabytes(self) -> float:
        """Size of the catalog files (database and WAL) in MB."""
        return sum(p.stat().st_size for p in self.folder.glob("catalog.db*")) / 1e6

    def close(self) -> None:
        """Release the in-process stores (the server opens its own)."""
        if self.stores is not None:
            self.stores.close()
            self.stores, self.refresher = None, None


def build_site(work: Path, size: int, batch: int, budget: float) -> Site:
    """A catalog of ``size`` items added in ``add_items`` batches, published and with a user.

    The build stops after the batch that passes ``budget`` seconds (the catalog then holds
    fewer items, which the report says), so the whole run stays bounded on a busy machine.
    """
    folder = work / f"site_{size}"
    folder.mkdir(parents=True)
    stores = open_stores(f"sqlite:///{(folder / 'catalog.db').resolve()}")
    catalog = stores.catalog
    catalog.create_dataset(MosaicDataset(name=DATASET, crs="EPSG:3857"))
    side = max(1, math.isqrt(size))
    per_1000: list[float] = []
    start = time.perf_counter()
    next_report = start + 30.0
    built = 0
    for first in range(0, size, batch):
        if built and time.perf_counter() - start > budget:
            print(f"  build time budget ({budget:.0f} s) reached at {built:,} items", flush=True)
            break
        items = [synthetic_item(i, side) for i in range(first, min(first + batch, size))]
        t0 = time.perf_counter()
        catalog.add_items(DATASET, items)
        built += len(items)
        per_1000.append((time.perf_counter() - t0) * 1000.0 / len(items) * 1000.0)
        if time.perf_counter() > next_report:
            done = first + len(items)
            took = time.perf_counter() - start
            print(f"  ... {done:,} / {size:,} items in {took:.0f} s", flush=True)
            next_report += 30.0
    build_seconds = time.perf_counter() - start
    summary = catalog.summary(DATASET)
    if summary.item_count != built:
        raise RuntimeError(f"the summary counts {summary.item_count} items, expected {built}")
    registry = ServiceRegistry()
    publisher = Publisher(catalog, registry, RasterioProjector())
    name = f"Items_{built}"
    publisher.publish(
        ServiceDefinition(
            name=name, folder=FOLDER, dataset=DATASET, properties={"hasLiveData": "true"}
        )
    )
    password = secrets.token_urlsafe(16)
    stores.users.add_user(User(USER, "publisher", hash_password(password)))
    inputs = RefreshRequest(FOLDER, name, force=True)  # as refreshOptions FORCE asks
    first_last = (per_1000[0], per_1000[-1])
    return Site(
        built,
        folder,
        build_seconds,
        first_last,
        stores,
        Refresher(catalog, publisher),
        inputs,
        password,
    )


# -- in-process ---------------------------------------------------------------------------------
def refresh_round(site: Site, count: int, record: bool) -> None:
    """``count`` forced refreshes and summary reads (timed when ``record``)."""
    assert site.stores is not None and site.refresher is not None
    for _ in range(count):
        t0 = time.perf_counter()
        outcome = site.refresher.refresh(site.inputs)
        took = time.perf_counter() - t0
        if outcome.after.summary.item_count != site.size:
            raise RuntimeError(f"refresh saw {outcome.after.summary.item_count} items")
        t1 = time.perf_counter()
        site.stores.catalog.summary(DATASET)
        took_summary = time.perf_counter() - t1
        if record:
            site.refresh.append(took)
            site.summary.append(took_summary)


def run_in_process(sites: list[Site], refreshes: int, rounds: int) -> None:
    """Alternating rounds of in-process refreshes over every site (after a warm-up)."""
    for site in sites:
        refresh_round(site, 3, record=False)
    per_round = max(1, math.ceil(refreshes / rounds))
    for r in range(rounds):
        order = sites if r % 2 == 0 else sites[::-1]
        for site in order:
            refresh_round(site, min(per_round, refreshes - len(site.refresh)), record=True)


# -- over HTTP ----------------------------------------------------------------------------------
def sign_in(client: httpx.Client, password: str) -> dict[str, str]:
    """A publisher token from generateToken, as the headers later requests carry."""
    r = client.post(
        f"{ROOT}/tokens/generateToken",
        data={
            "username": USER,
            "password": password,
            "client": "referer",
            "referer": "http",
            "f": "json",
        },
    )
    body = r.json()
    if "token" not in body:
        raise RuntimeError(f"generateToken gave no token: HTTP {r.status_code} {r.text[:300]}")
    return {"Referer": "http", "X-Esri-Authorization": f"Bearer {body['token']}"}


def run_job(
    client: httpx.Client, headers: dict[str, str], site: Site, poll: float, record: bool
) -> None:
    """Submit one Refresh Service job and poll it until it ends; record the times."""
    form = {
        "serviceName": site.name,
        "serviceType": "ImageServer",
        "serviceFolder": FOLDER,
        "refreshOptions": FORCE,
        "f": "json",
    }
    t0 = time.perf_counter()
    r = client.post(f"{TASK}/submitJob", data=form, headers=headers)
    submitted = time.perf_counter() - t0
    body = r.json()
    if "jobId" not in body:
        site.errors.append(f"submitJob: HTTP {r.status_code} {r.text[:300]}")
        return
    job_url = f"{TASK}/jobs/{body['jobId']}"
    polls = 0
    status = str(body.get("jobStatus", ""))
    deadline = t0 + 30.0
    while status not in TERMINAL:
        if time.perf_counter() > deadline:
            site.errors.append(f"job {body['jobId']} still {status} after 30 s")
            return
        if polls:
            time.sleep(poll)
        polls += 1
        answer = client.get(job_url, params={"f": "json"}, headers=headers).json()
        status = str(answer.get("jobStatus", answer.get("error", "no jobStatus")))
    total = time.perf_counter() - t0
    if status != "esriJobSucceeded":
        answer = client.get(
            job_url, params={"f": "json", "returnMessages": "true"}, headers=headers
        ).json()
        site.errors.append(f"job {body['jobId']}: {status} {answer.get('messages')}"[:400])
        return
    if record:
        site.submit.append(submitted)
        site.jobs.append(total)
        site.polls.append(polls)
        site.job_ids.append(str(body["jobId"]))


def server_side_times(site: Site) -> None:
    """Job timestamps (created, started, finished; epoch ms) from the job store."""
    stores = open_stores(site.url)
    try:
        for job_id in site.job_ids:
            job = stores.jobs.get_job(job_id)
            if job.started is None or job.finished is None:
                site.errors.append(f"job {job_id} has no start or finish time")
                continue
            site.queued.append((job.started - job.created) / 1000.0)
            site.running.append((job.finished - job.started) / 1000.0)
            site.server_total.append((job.finished - job.created) / 1000.0)
    finally:
        stores.close()


def last_results(client: httpx.Client, headers: dict[str, str], site: Site) -> None:
    """One more job, then its refreshResults (a sanity check: the right catalog was refreshed)."""
    form = {
        "serviceName": site.name,
        "serviceType": "ImageServer",
        "serviceFolder": FOLDER,
        "refreshOptions": FORCE,
        "f": "json",
    }
    job = client.post(f"{TASK}/submitJob", data=form, headers=headers).json()
    url = f"{TASK}/jobs/{job['jobId']}"
    deadline = time.perf_counter() + 30.0
    while client.get(url, params={"f": "json"}, headers=headers).json().get(
        "jobStatus"
    ) not in TERMINAL and (time.perf_counter() < deadline):
        time.sleep(0.05)
    value = client.get(
        f"{url}/results/refreshResults", params={"f": "json"}, headers=headers
    ).json()
    if isinstance(value.get("value"), str):
        site.last_results = json.loads(value["value"])
    else:
        site.errors.append(f"refreshResults: {str(value)[:300]}")


def run_http(sites: list[Site], jobs: int, rounds: int, poll: float, work: Path) -> None:
    """One server per site; alternating rounds of Refresh Service jobs."""
    servers: list[ServerProcess] = []
    try:
        for site in sites:
            env = {"LIVEMOSAIC_CATALOG_URL": site.url, "LIVEMOSAIC_ROOT": ROOT.strip("/")}
            server = ServerProcess(
                ["--data-dir", str(site.folder)], env, REPO, work / f"server_{site.size}.log"
            )
            servers.append(server)
            server.start(f"{ROOT}/rest/info?f=json")
        clients = [
            httpx.Client(base_url=s.base_url, timeout=30.0, trust_env=False) for s in servers
        ]
        try:
            headers = [sign_in(c, site.password) for c, site in zip(clients, sites, strict=True)]
            pairs = list(zip(sites, clients, headers, strict=True))
            for site, client, h in pairs:  # warm-up: routes, connections, first job
                for _ in range(3):
                    run_job(client, h, site, poll, record=False)
            per_round = max(1, math.ceil(jobs / rounds))
            for r in range(rounds):
                for site, client, h in pairs if r % 2 == 0 else pairs[::-1]:
                    for _ in range(min(per_round, jobs - len(site.jobs))):
                        run_job(client, h, site, poll, record=True)
                        if len(site.errors) > 5:
                            raise RuntimeError("; ".join(site.errors))
            for site, client, h in pairs:
                last_results(client, h, site)
        finally:
            for c in clients:
                c.close()
    finally:
        for server in servers:
            server.stop()
    for site in sites:
        server_side_times(site)


# -- report ---------------------------------------------------------------------------------------
def ratio(sites: list[Site], pick: str) -> str:
    """Median of the largest size / median of the smallest size."""
    small = Latency.of(getattr(sites[0], pick)).p50
    large = Latency.of(getattr(sites[-1], pick)).p50
    return f"{large / small:.2f}" if small > 0 else "-"


def report_in_process(sites: list[Site]) -> None:
    """Print the in-process table and ratios."""
    print("\nin-process Refresher.refresh (force: summary read, snapshot build, persist, swap)")
    rows = []
    for s in sites:
        lat, summ = Latency.of(s.refresh), Latency.of(s.summary)
        rows.append(
            [f"{s.size:,}", str(lat.n), ms(lat.p50), ms(lat.p99), ms(lat.mean), ms(lat.max)]
            + [ms(summ.p50), ms(summ.p99)]
        )
    header = ["items", "n", "p50 ms", "p99 ms", "mean ms", "max ms", "summary p50", "p99"]
    print(table(header, rows))
    big, small = f"{sites[-1].size:,}", f"{sites[0].size:,}"
    print(
        f"ratio {big} / {small} items (median): refresh {ratio(sites, 'refresh')}, "
        f"summary() {ratio(sites, 'summary')}  (1.00 = does not grow)"
    )


def report_http(sites: list[Site], poll: float) -> None:
    """Print the HTTP table, ratio and checks."""
    big, small = f"{sites[-1].size:,}", f"{sites[0].size:,}"
    print(f"\nHTTP submitJob -> esriJobSucceeded (polling every {poll * 1000:.0f} ms)")
    rows = []
    for s in sites:
        sub, job = Latency.of(s.submit), Latency.of(s.jobs)
        polls = sum(s.polls) / len(s.polls) if s.polls else float("nan")
        first = sum(p == 1 for p in s.polls) / len(s.polls) * 100 if s.polls else float("nan")
        rows.append(
            [f"{s.size:,}", str(job.n), ms(sub.p50), ms(sub.p99)]
            + [ms(job.p50), ms(job.p99), ms(job.mean), ms(job.max)]
            + [f"{polls:.1f}", f"{first:.0f}%", str(len(s.errors))]
        )
    header = ["items", "jobs", "submit p50", "p99", "succeeded p50", "p99", "mean", "max"]
    print(table([*header, "polls/job", "done at 1st poll", "errors"], rows))
    means = [Latency.of(s.jobs).mean for s in sites]
    mean_ratio = f"{means[-1] / means[0]:.2f}" if means[0] > 0 else "-"
    print(
        f"ratio {big} / {small} items: submit->succeeded median {ratio(sites, 'jobs')}, "
        f"mean {mean_ratio}  (1.00 = does not grow; the poll period quantises single jobs)"
    )
    print("\nthe same jobs on the server (job store timestamps, 1 ms resolution)")
    rows = []
    for s in sites:
        q, run, tot = Latency.of(s.queued), Latency.of(s.running), Latency.of(s.server_total)
        rows.append(
            [f"{s.size:,}", str(tot.n), ms(q.p50), ms(q.p99), ms(run.p50), ms(run.p99)]
            + [ms(tot.p50), ms(tot.p99), ms(tot.mean), ms(tot.max)]
        )
    header = ["items", "jobs", "queued p50", "p99", "run p50", "p99", "total p50", "p99"]
    print(table([*header, "mean", "max"], rows))
    means = [Latency.of(s.server_total).mean for s in sites]
    server_ratio = f"{means[-1] / means[0]:.2f}" if means[0] > 0 else "-"
    print(
        f"ratio {big} / {small} items, server side: total median {ratio(sites, 'server_total')}, "
        f"mean {server_ratio}, run median {ratio(sites, 'running')}  (1.00 = does not grow)"
    )
    worst = max((Latency.of(s.jobs).p99 for s in sites), default=float("nan"))
    verdict = "yes" if worst < 1.0 else "NO"
    print(f"every size: submit->succeeded p99 under 1 s: {verdict} (worst p99 {ms(worst)} ms)")
    for s in sites:
        res = s.last_results
        print(
            f"  last refreshResults of {s.name}: generation {res.get('generation')}, "
            f"itemCount {res.get('itemCount')}, timeExtent {res.get('timeExtent')}"
        )
        for err in s.errors[:3]:
            print(f"  error: {err}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items", default="1000,1000000", help="catalog sizes, comma-separated (smallest first)"
    )
    parser.add_argument("--batch", type=int, default=50_000, help="items per add_items call")
    parser.add_argument(
        "--build-seconds",
        type=float,
        default=400.0,
        help="time budget per catalog build; a slower build stops early at fewer items",
    )
    parser.add_argument("--refreshes", type=int, default=50, help="in-process refreshes per size")
    parser.add_argument("--jobs", type=int, default=50, help="HTTP jobs per size")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--poll", type=float, default=0.02, help="job polling period, seconds")
    parser.add_argument("--work-dir", type=Path, default=None, help="parent of the temp folder")
    parser.add_argument(
        "--quick", action="store_true", help="1k and 100k items, 20 refreshes and jobs (~1 min)"
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.items.split(",") if s.strip())
    if args.quick:
        sizes, args.refreshes, args.jobs = [1000, 100_000], 20, 20
        args.build_seconds = min(args.build_seconds, 60.0)
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("give at least two positive sizes to compare")
    print("refresh_bench: Refresh Service cost vs catalog size (SQLite catalog)")
    print(machine_line())
    print(f"two threads did {parallel_capacity():.2f}x the work of one (2.00 = two free cores)")
    work = Path(tempfile.mkdtemp(prefix="livemosaic-refresh-bench-", dir=args.work_dir))
    sites: list[Site] = []
    try:
        for size in sizes:
            site = build_site(work, size, args.batch, args.build_seconds)
            sites.append(site)
            first, last = site.batch_ms_per_1000
            print(
                f"built {site.size:,} items in {site.build_seconds:.1f} s "
                f"({site.size / site.build_seconds:,.0f} items/s, {site.db_megabytes():.0f} MB); "
                f"add_items per 1000 items: first batch {first:.0f} ms, last {last:.0f} ms",
                flush=True,
            )
        run_in_process(sites, args.refreshes, args.rounds)
        report_in_process(sites)
        for site in sites:
            site.close()
        try:
            run_http(sites, args.jobs, args.rounds, args.poll, work)
        except (RuntimeError, httpx.HTTPError, KeyError, ValueError) as exc:
            sites[0].errors.append(f"HTTP part stopped: {type(exc).__name__}: {exc}"[:600])
        report_http(sites, args.poll)
    finally:
        for site in sites:
            site.close()
        shutil.rmtree(work, ignore_errors=True)
    print(machine_line())
    failed = any(s.errors for s in sites)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
