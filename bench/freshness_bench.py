"""Ingest freshness with the DEFAULT watch settings: from an atomic rename to visible, and bursts.

``livemosaic serve --watch rules.toml`` runs in a subprocess on 127.0.0.1 at a free port. The
rules name only the folders, datasets and services, so every timing setting (settle time,
batch window, quiet period) is the default of the code under test. The files are copies of a
real sample raster (``size/byte.tif`` of the shared sample data, 20×20 px, 736 bytes), each
with its georeferencing moved to its own cell of a grid so that it widens the extent:

1. **Latency** (``Bench/Latency``): ``--files`` (20) copies, each one cell east of the last,
   are delivered one at a time as producers are told to: written as ``name.tif.part`` in the
   watched folder, then renamed. From the rename it times (a) the item count of ``query``
   including it and ``exportImage`` over its cell drawing it, and (b) the service info's extent
   covering it (Refresh Service done). p50/p95/max.
2. **Burst** (``Bench/Burst``): ``--burst`` (1,000) copies in a grid, staged beside the watched
   folder and renamed into it as fast as renames go. It reports the time until ``query``
   counts them all and until the service info covers the grid, files/s, the number of
   ingest batches (``add`` entries of the dataset's history: one per batch) and of Refresh
   Service jobs.

With ``--baseline REV`` the same measurements run first against the code of git revision
``REV`` (its ``src`` exported with ``git archive`` into the temporary folder and put first on
the server's ``PYTHONPATH``), then against the working tree, and the ratios after/before are
printed. Only 127.0.0.1 is contacted; the temporary folder and the servers are removed.

    .venv/bin/python bench/freshness_bench.py --baseline main     # before and after
    .venv/bin/python bench/freshness_bench.py --quick              # 5 files, burst of 100
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import rasterio
from affine import Affine
from common import Latency, ServerProcess, machine_line, ms, parallel_capacity, table
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SAMPLE = "size/byte.tif"
POLL = 0.02  # seconds between checks while waiting for one file
PATIENCE = 30.0  # give up on one file after this long
RULES = """
[defaults]
rescan_seconds = 60
{extra}

[[watch]]
folder = "in/latency"
dataset = "latency"
service = "Bench/Latency"

[[watch]]
folder = "in/burst"
dataset = "burst"
service = "Bench/Burst"
"""


def sample_file() -> Path:
    """The sample raster (env ``LIVEMOSAIC_SAMPLE_DATA`` or ../shared/data)."""
    env = os.environ.get("LIVEMOSAIC_SAMPLE_DATA")
    folder = Path(env) if env else REPO.parent / "shared" / "data"
    if not (folder / SAMPLE).is_file():
        raise SystemExit(f"{SAMPLE} not found in {folder}: set LIVEMOSAIC_SAMPLE_DATA")
    return folder / SAMPLE


@dataclass(frozen=True)
class Grid:
    """Cells of the sample's size east and south of its own place."""

    transform: Affine
    width: int
    height: int

    @staticmethod
    def of(sample: Path) -> Grid:
        with rasterio.open(sample) as src:
            return Grid(src.transform, src.width, src.height)

    def transform_at(self, col: int, row: int) -> Affine:
        t = self.transform
        return Affine(
            t.a, t.b, t.c + col * self.width * t.a, t.d, t.e, t.f + row * self.height * t.e
        )

    def bounds(self, col: int, row: int) -> tuple[float, float, float, float]:
        t = self.transform_at(col, row)
        return (t.c, t.f + self.height * t.e, t.c + self.width * t.a, t.f)


def copy_at(sample: Path, grid: Grid, target: Path, col: int, row: int) -> Path:
    """A copy of the sample georeferenced at grid cell (col, row)."""
    shutil.copyfile(sample, target)
    with rasterio.open(target, "r+") as dst:
        dst.transform = grid.transform_at(col, row)
    return target


def populate(work: Path, firsts: dict[str, Path]) -> None:
    """Datasets with one file each and their live services, before the server starts."""
    from livemosaic.adapters.catalog import open_stores
    from livemosaic.adapters.raster import RasterioProjector, RasterioSource
    from livemosaic.core.ingest import Ingestor
    from livemosaic.core.models import ServiceDefinition
    from livemosaic.core.publishing import Publisher
    from livemosaic.core.registry import ServiceRegistry

    stores = open_stores(f"sqlite:///{work / 'data' / 'catalog.db'}")
    try:
        ing = Ingestor(stores.catalog, RasterioSource([work / "in"]), [work / "in"])
        publisher = Publisher(stores.catalog, ServiceRegistry(), RasterioProjector())
        for name, first in firsts.items():
            ing.create_dataset(name, "EPSG:26711")
            assert ing.add_paths(name, [first]).added == 1
            publisher.publish(
                ServiceDefinition(
                    name.capitalize(),
                    name,
                    folder="Bench",
                    properties={"hasLiveData": "true", "maxMosaicImageCount": "50"},
                )
            )
    finally:
        stores.close()


class Client:
    """The HTTP side: service info, exportImage, counts."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.http = httpx.Client(trust_env=False, timeout=30)

    def info(self, service: str) -> dict[str, Any]:
        url = f"{self.root}/rest/services/{service}/ImageServer"
        return dict(self.http.get(url, params={"f": "json"}).json())

    def drawn(self, service: str, bbox: tuple[float, ...]) -> bool:
        """True when exportImage of ``bbox`` (8×8 PNG) is opaque in its middle."""
        r = self.http.get(
            f"{self.root}/rest/services/{service}/ImageServer/exportImage",
            params={"bbox": ",".join(map(str, bbox)), "size": "8,8", "format": "png32"}
            | {"f": "image"},
        )
        if not r.headers.get("content-type", "").startswith("image/png"):
            raise RuntimeError(f"exportImage failed: {r.text[:300]}")
        alpha = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))[:, :, 3]
        return bool(alpha[2:6, 2:6].all())

    def count(self, service: str) -> int:
        r = self.http.get(
            f"{self.root}/rest/services/{service}/ImageServer/query",
            params={"where": "1=1", "returnCountOnly": "true", "f": "json"},
        )
        return int(r.json()["count"])


def db_counts(db: Path, dataset: str, service_key: str, since_ms: int) -> tuple[int, int, int]:
    """(ingest batches, refresh jobs, jobs still open) since ``since_ms``."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        batches = conn.execute(
            "SELECT count(*) FROM history h JOIN datasets d ON d.id = h.dataset_id "
            "WHERE d.name = ? AND h.operation = 'add' AND h.time >= ?",
            (dataset, since_ms),
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT status FROM jobs WHERE service_key = ? AND created >= ?",
            (service_key, since_ms),
        ).fetchall()
    still_open = sum(1 for (s,) in rows if s in ("esriJobSubmitted", "esriJobExecuting"))
    return int(batches), len(rows), still_open


@dataclass
class Result:
    """What one run measured."""

    label: str
    counted: list[float]  # rename -> query counts it and exportImage draws it
    covered: list[float]  # rename -> service info extent covers it
    misses: int
    burst: int
    burst_counted: float | None
    burst_covered: float | None
    batches: int
    jobs: int


def run(label: str, work: Path, sample: Path, args: argparse.Namespace, src: Path | None) -> Result:
    """One server (``src``: the code to run, None = the installed working tree) and both tests."""
    grid = Grid.of(sample)
    base = work / label.split()[0]
    for folder in ("stage/latency", "stage/burst", "in/latency", "in/burst", "data"):
        (base / folder).mkdir(parents=True)
    firsts = {
        "latency": copy_at(sample, grid, base / "in/latency/lat_000.tif", 0, 0),
        "burst": copy_at(sample, grid, base / "in/burst/b_0000.tif", 0, 0),
    }
    lat_files = [
        copy_at(sample, grid, base / "stage/latency" / f"lat_{i:03d}.tif", i, 0)
        for i in range(1, args.files + 1)
    ]
    cols = max(1, int(round((args.burst + 1) ** 0.5)))
    cells = [(i % cols, i // cols) for i in range(1, args.burst + 1)]
    burst_files = [
        copy_at(sample, grid, base / "stage/burst" / f"b_{i:04d}.tif", c, r)
        for i, (c, r) in enumerate(cells, start=1)
    ]
    populate(base, firsts)
    rules = base / "rules.toml"
    extra = "" if args.batch_quiet is None else f"batch_quiet_seconds = {args.batch_quiet}"
    rules.write_text(RULES.format(extra=extra))
    env = {"PYTHONPATH": str(src)} if src is not None else {}
    server = ServerProcess(
        ["--data-dir", str(base / "data"), "--data-folder", str(base / "in")],
        env,
        base,
        base / "serve.log",
    )
    server.command += ["--watch", str(rules)]
    try:
        server.start("/arcgis/rest/services/Bench/Latency/ImageServer?f=json")
        client = Client(f"{server.base_url}/arcgis")
        time.sleep(1.0)  # the watcher's start-up scan
        counted: list[float] = []
        covered: list[float] = []
        misses = 0
        for index, staged in enumerate(lat_files, start=1):
            box = grid.bounds(index, 0)
            target = base / "in/latency" / staged.name
            part = target.with_name(target.name + ".part")
            shutil.copyfile(staged, part)  # written under a temporary name in the folder
            t0 = time.monotonic()
            os.rename(part, target)
            seen: dict[str, float] = {}
            while time.monotonic() - t0 < PATIENCE and len(seen) < 2:
                if (
                    "count" not in seen
                    and client.count("Bench/Latency") >= index + 1
                    and client.drawn("Bench/Latency", box)
                ):
                    seen["count"] = time.monotonic() - t0
                if "info" not in seen:
                    extent = client.info("Bench/Latency")["extent"]
                    if extent["xmax"] >= box[2] - 1:
                        seen["info"] = time.monotonic() - t0
                time.sleep(POLL)
            if len(seen) < 2:
                misses += 1
                continue
            counted.append(seen["count"])
            covered.append(seen["info"])
            time.sleep(args.gap)  # one file at a time
        db = base / "data" / "catalog.db"
        since_ms = int(time.time() * 1000)
        right = max(grid.bounds(c, r)[2] for c, r in cells)
        bottom = min(grid.bounds(c, r)[1] for c, r in cells)
        t_start = time.monotonic()
        for i, path in enumerate(burst_files):
            if args.pace:  # a producer delivering at a steady rate
                time.sleep(max(0.0, t_start + i / args.pace - time.monotonic()))
            os.rename(path, base / "in/burst" / path.name)
        burst_counted = burst_covered = None
        while time.monotonic() - t_start < args.burst_timeout:
            if burst_counted is None and client.count("Bench/Burst") >= args.burst + 1:
                burst_counted = time.monotonic() - t_start
            if burst_counted is not None and burst_covered is None:
                ext = client.info("Bench/Burst")["extent"]
                if ext["xmax"] >= right - 1 and ext["ymin"] <= bottom + 1:
                    burst_covered = time.monotonic() - t_start
            if burst_counted is not None and burst_covered is not None:
                break
            time.sleep(0.05)
        batches, jobs, still_open = db_counts(db, "burst", "bench/burst", since_ms)
        deadline = time.monotonic() + 30
        while still_open and time.monotonic() < deadline:
            time.sleep(0.2)
            batches, jobs, still_open = db_counts(db, "burst", "bench/burst", since_ms)
        return Result(
            label, counted, covered, misses, args.burst, burst_counted, burst_covered, batches, jobs
        )
    finally:
        server.stop()


def export_source(rev: str, into: Path) -> Path:
    """The ``src`` folder of git revision ``rev``, exported into ``into``."""
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def report(results: list[Result], args: argparse.Namespace) -> None:
    rows = []
    for r in results:
        for what, values in (
            ("query count + exportImage", r.counted),
            ("service info extent", r.covered),
        ):
            lat = Latency.of(values)
            p95 = float(np.percentile(values, 95)) if values else float("nan")
            rows.append([r.label, what, str(lat.n), ms(lat.p50), ms(p95), ms(lat.max)])
    print("\n[latency] one file at a time, from the rename into the folder until visible")
    print(table(["code", "visible in", "n", "p50 ms", "p95 ms", "max ms"], rows))
    for r in results:
        if r.misses:
            print(f"  {r.label}: {r.misses} files not visible within {PATIENCE:.0f} s")
    rows = []
    for r in results:
        rate = f"{r.burst / r.burst_counted:.0f}" if r.burst_counted else "-"
        rows.append(
            [
                r.label,
                str(r.burst),
                f"{r.burst_counted:.2f}" if r.burst_counted else "timeout",
                f"{r.burst_covered:.2f}" if r.burst_covered else "-",
                rate,
                str(r.batches),
                str(r.jobs),
            ]
        )
    pace = f"at {args.pace:g} files/s" if args.pace else "together"
    print(f"\n[burst] renamed into the folder {pace}")
    print(
        table(
            ["code", "files", "all counted s", "extent s", "files/s", "batches", "refreshes"], rows
        )
    )
    if len(results) == 2:
        before, after = results

        def ratio(a: list[float], b: list[float]) -> str:
            if not a or not b:
                return "-"
            return f"{float(np.median(b)) / float(np.median(a)):.2f}"

        print("\nafter / before (p50 latency; <1 is faster):")
        print(f"  query count + exportImage: {ratio(before.counted, after.counted)}")
        print(f"  service info extent:       {ratio(before.covered, after.covered)}")
        if before.burst_counted and after.burst_counted:
            print(f"  burst files/s:             {before.burst_counted / after.burst_counted:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20, help="Files for the latency test.")
    parser.add_argument("--burst", type=int, default=1000, help="Files in the burst.")
    parser.add_argument("--gap", type=float, default=0.3, help="Pause between latency files.")
    parser.add_argument("--burst-timeout", type=float, default=120.0, help="Give up after.")
    parser.add_argument(
        "--pace", type=float, default=0.0, help="Burst files per second (0: all at once)."
    )
    parser.add_argument(
        "--batch-quiet", type=float, help="Set batch_quiet_seconds (default: the code's)."
    )
    parser.add_argument("--baseline", metavar="REV", help="Also measure git revision REV first.")
    parser.add_argument("--quick", action="store_true", help="5 files and a burst of 100.")
    args = parser.parse_args()
    if args.quick:
        args.files, args.burst = 5, 100
    print(machine_line())
    sample = sample_file()
    work = Path(tempfile.mkdtemp(prefix="livemosaic-freshness-bench-"))
    try:
        results = []
        if args.baseline:
            src = export_source(args.baseline, work / "baseline")
            results.append(run(f"before ({args.baseline})", work, sample, args, src))
        results.append(run("after", work, sample, args, None))
        report(results, args)
        print(f"\n{machine_line()}; parallel capacity {parallel_capacity():.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
