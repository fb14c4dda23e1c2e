"""Ingest-to-visible latency and burst throughput of the folder watcher inside ``livemosaic serve``.

``livemosaic serve --watch rules.toml`` runs in a subprocess on 127.0.0.1 at a free port,
watching two folders of a temporary data folder (settle time ``--settle`` 0.3 s, batch window
``--batch-window`` 0.1 s), each feeding a live service:

1. **Latency** (``Bench/Latency``): ``--cogs`` (20) Cloud-Optimized GeoTIFFs of 256×256 px,
   each one tile east of the last, are moved one at a time (a rename: the file is complete)
   into the watched folder. For each, the time from the rename until exportImage shows its
   pixels, until the service info's extent covers it, and until a WebSocket client receives
   the ``serviceRefreshed`` message. p50/p99/max over the files. The baseline measured in the
   same run: the configured wait (a renamed file skips the settle time and waits for its batch
   to close: the smaller of the batch window and quiet period) and, in-process, the time to inspect
   one such file (open, read every pixel, statistics) — what the pipeline must do anyway.
2. **Burst** (``Bench/Burst``): ``--burst`` (1,000) COGs of 64×64 px, a grid that grows the
   extent, are moved into the watched folder as fast as renames go. It reports the time until
   the catalog holds all of them (``query returnCountOnly``) and until the service info covers
   the whole grid, the files/s, and the number of Refresh Service jobs the watcher submitted
   (few: files arriving together share one transaction and one refresh). The baseline: the
   same files through one in-process pipeline batch on a scratch catalog (no server, no
   watcher), measured before the server starts.

Only 127.0.0.1 is contacted; the temporary folder and the server are removed at the end.

    .venv/bin/python bench/ingest_bench.py             # 20 COGs, burst of 1,000
    .venv/bin/python bench/ingest_bench.py --quick     # 5 COGs, burst of 100
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import rasterio
from common import Latency, ServerProcess, machine_line, ms, parallel_capacity, table
from PIL import Image
from rasterio.transform import from_origin
from websockets.sync.client import connect

PIXEL = 10.0  # metres
ORIGIN = (1_000_000.0, 6_000_000.0)  # EPSG:3857
LAT_SIZE = 256
POLL = 0.02  # seconds between checks while waiting for one file
PATIENCE = 30.0  # give up on one file after this long
RULES = """
[defaults]
settle_seconds = {settle}
batch_window_seconds = {window}
rescan_seconds = 60

[[watch]]
folder = "in/latency"
dataset = "latency"
service = "Bench/Latency"

[[watch]]
folder = "in/burst"
dataset = "burst"
service = "Bench/Burst"
"""


def write_cog(path: Path, col: int, row: int, size: int, rng: np.random.Generator) -> None:
    """A 3-band uint8 COG of ``size`` px at grid cell (col, row) of the bench grid."""
    x = ORIGIN[0] + col * size * PIXEL
    y = ORIGIN[1] - row * size * PIXEL
    data = rng.integers(1, 255, size=(3, size, size), dtype=np.uint8)
    profile = {
        "driver": "COG",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:3857",
        "transform": from_origin(x, y, PIXEL, PIXEL),
        "nodata": 0,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def bounds(col: int, row: int, size: int) -> tuple[float, float, float, float]:
    """xmin, ymin, xmax, ymax of a grid cell."""
    x = ORIGIN[0] + col * size * PIXEL
    y = ORIGIN[1] - row * size * PIXEL
    return (x, y - size * PIXEL, x + size * PIXEL, y)


def populate(work: Path, first_latency: Path, first_burst: Path) -> None:
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
        for name, first in (("latency", first_latency), ("burst", first_burst)):
            ing.create_dataset(name, "EPSG:3857")
            assert ing.add_paths(name, [first]).added == 1
            definition = ServiceDefinition(
                name.capitalize(),
                name,
                folder="Bench",
                properties={"hasLiveData": "true", "maxMosaicImageCount": "50"},
            )
            publisher.publish(definition)
    finally:
        stores.close()


def inspect_floor(paths: list[Path]) -> Latency:
    """In-process: inspect each file (open, read every pixel, statistics)."""
    from livemosaic.adapters.raster import RasterioSource
    from livemosaic.core.ports import InspectOptions

    source = RasterioSource({p.parent for p in paths})
    options = InspectOptions(dataset_crs="EPSG:3857", compute_stats=True)
    times = []
    for path in paths:
        t0 = time.perf_counter()
        source.inspect(str(path), options)
        times.append(time.perf_counter() - t0)
    return Latency.of(times)


def pipeline_floor(work: Path, files: list[Path]) -> float:
    """In-process: seconds for one pipeline batch of ``files`` into a scratch catalog."""
    from livemosaic.adapters.catalog import open_stores
    from livemosaic.adapters.raster import RasterioSource
    from livemosaic.adapters.watch import build_pipeline
    from livemosaic.core.models import MosaicDataset
    from livemosaic.core.watch_rules import WatchRule

    stores = open_stores(f"sqlite:///{work / 'floor' / 'catalog.db'}")
    catalog = stores.catalog
    try:
        catalog.create_dataset(MosaicDataset("floor", "EPSG:3857"))
        folder = files[0].parent
        pipeline = build_pipeline(catalog, stores.journal, RasterioSource([folder]), [folder])
        t0 = time.perf_counter()
        report = pipeline.process(WatchRule.adhoc("floor"), files)
        took = time.perf_counter() - t0
        if len(report.files_added) != len(files):
            raise RuntimeError(f"the in-process batch added {len(report.files_added)} files")
        return took
    finally:
        catalog.close()


@dataclass
class Notifications:
    """A WebSocket client in a thread recording each serviceRefreshed message's arrival."""

    url: str
    service: str
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with connect(self.url, proxy=None, open_timeout=10) as ws:
            ws.send(json.dumps({"op": "subscribe", "services": [self.service]}))
            while not self.stop.is_set():
                try:
                    message = json.loads(ws.recv(timeout=0.2))
                except TimeoutError:
                    continue
                if message.get("event") == "subscribed":
                    self.ready.set()
                if message.get("event") == "serviceRefreshed":
                    with self.lock:
                        self.messages.append((time.monotonic(), message))

    def first(self, since: float, xmax: float) -> float | None:
        with self.lock:
            for at, message in self.messages:
                if at >= since and message["extent"]["xmax"] >= xmax - 1:
                    return at
        return None


class Client:
    """The HTTP side: service info, exportImage, counts."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.http = httpx.Client(trust_env=False, timeout=30)

    def info(self, service: str) -> dict[str, Any]:
        url = f"{self.root}/rest/services/{service}/ImageServer"
        return dict(self.http.get(url, params={"f": "json"}).json())

    def drawn(self, service: str, bbox: tuple[float, ...]) -> bool:
        """True when exportImage of ``bbox`` (32×32 PNG) has any opaque pixel."""
        r = self.http.get(
            f"{self.root}/rest/services/{service}/ImageServer/exportImage",
            params={"bbox": ",".join(map(str, bbox)), "size": "32,32", "format": "png32"}
            | {"f": "image"},
        )
        if not r.headers.get("content-type", "").startswith("image/png"):
            raise RuntimeError(f"exportImage failed: {r.text[:300]}")
        return bool(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))[:, :, 3].any())

    def count(self, service: str) -> int:
        r = self.http.get(
            f"{self.root}/rest/services/{service}/ImageServer/query",
            params={"where": "1=1", "returnCountOnly": "true", "f": "json"},
        )
        return int(r.json()["count"])


def refresh_jobs(db: Path, service_key: str, since_ms: int) -> tuple[int, int]:
    """(jobs created since ``since_ms`` for the service, how many of them are still open)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT status FROM jobs WHERE service_key = ? AND created >= ?",
            (service_key, since_ms),
        ).fetchall()
    open_ = sum(1 for (status,) in rows if status in ("esriJobSubmitted", "esriJobExecuting"))
    return len(rows), open_


def run_latency(
    client: Client, ws: Notifications, staged: list[Path], target: Path, gap: float
) -> tuple[list[float], list[float], list[float], int]:
    """Move the staged COGs in one at a time; (export, info, message) latencies, misses."""
    exports: list[float] = []
    infos: list[float] = []
    messages: list[float] = []
    misses = 0
    for index, path in enumerate(staged, start=1):
        box = bounds(index, 0, LAT_SIZE)
        t0 = time.monotonic()
        os.rename(path, target / path.name)
        seen: dict[str, float] = {}
        while time.monotonic() - t0 < PATIENCE and len(seen) < 3:
            if "export" not in seen and client.drawn("Bench/Latency", box):
                seen["export"] = time.monotonic() - t0
            if "info" not in seen and client.info("Bench/Latency")["extent"]["xmax"] >= box[2] - 1:
                seen["info"] = time.monotonic() - t0
            if "message" not in seen:
                at = ws.first(t0, box[2])
                if at is not None:
                    seen["message"] = at - t0
            time.sleep(POLL)
        if len(seen) < 3:
            misses += 1
            continue
        exports.append(seen["export"])
        infos.append(seen["info"])
        messages.append(seen["message"])
        time.sleep(gap)  # one file at a time: let the batch window close
    return exports, infos, messages, misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cogs", type=int, default=20, help="COGs for the latency test.")
    parser.add_argument("--burst", type=int, default=1000, help="Files in the burst.")
    parser.add_argument("--burst-size", type=int, default=64, help="Pixels per burst tile side.")
    parser.add_argument("--settle", type=float, default=0.3, help="Watcher settle seconds.")
    parser.add_argument("--batch-window", type=float, default=0.1, help="Batch window seconds.")
    parser.add_argument("--gap", type=float, default=0.3, help="Pause between latency files.")
    parser.add_argument("--burst-timeout", type=float, default=300.0, help="Give up after.")
    parser.add_argument("--quick", action="store_true", help="5 COGs and a burst of 100.")
    args = parser.parse_args()
    if args.quick:
        args.cogs, args.burst = 5, 100

    print(machine_line())
    work = Path(tempfile.mkdtemp(prefix="livemosaic-ingest-bench-"))
    server: ServerProcess | None = None
    try:
        rng = np.random.default_rng(11)
        stage = work / "stage"
        for folder in (stage / "latency", stage / "burst", work / "in/latency", work / "in/burst"):
            folder.mkdir(parents=True)
        (work / "data").mkdir()
        t0 = time.perf_counter()
        write_cog(work / "in/latency/lat_000.tif", 0, 0, LAT_SIZE, rng)
        lat_files = []
        for i in range(1, args.cogs + 1):
            path = stage / "latency" / f"lat_{i:03d}.tif"
            write_cog(path, i, 0, LAT_SIZE, rng)
            lat_files.append(path)
        cols = max(1, int(round((args.burst + 1) ** 0.5)))
        write_cog(work / "in/burst/b_0000.tif", 0, 0, args.burst_size, rng)
        burst_files = []
        cells = []
        for i in range(1, args.burst + 1):
            col, row = i % cols, i // cols
            path = stage / "burst" / f"b_{i:04d}.tif"
            write_cog(path, col, row, args.burst_size, rng)
            burst_files.append(path)
            cells.append((col, row))
        print(
            f"files: {args.cogs} COGs of {LAT_SIZE} px and {args.burst} COGs of "
            f"{args.burst_size} px generated in {time.perf_counter() - t0:.1f} s"
        )
        floor = inspect_floor(lat_files)
        burst_floor = pipeline_floor(work, burst_files)
        populate(work, work / "in/latency/lat_000.tif", work / "in/burst/b_0000.tif")
        rules = work / "rules.toml"
        rules.write_text(RULES.format(settle=args.settle, window=args.batch_window))

        server = ServerProcess(
            ["--data-dir", str(work / "data"), "--data-folder", str(work / "in")],
            {},
            work,
            work / "serve.log",
        )
        server.command += ["--watch", str(rules)]
        server.start("/arcgis/rest/services/Bench/Latency/ImageServer?f=json")
        root = f"{server.base_url}/arcgis"
        client = Client(root)
        ws = Notifications(
            f"ws://127.0.0.1:{server.port}/arcgis/livemosaic/ws", "Bench/Latency.ImageServer"
        )
        thread = threading.Thread(target=ws.run, daemon=True)
        thread.start()
        if not ws.ready.wait(15):
            raise RuntimeError("the WebSocket client did not subscribe")

        # -- 1. latency -------------------------------------------------------------------------
        exports, infos, messages, misses = run_latency(
            client, ws, lat_files, work / "in/latency", args.gap
        )
        ws.stop.set()
        visible = [max(e, i) for e, i in zip(exports, infos, strict=True)]
        print(
            f"\n[latency] {len(visible)} COGs moved in one at a time (settle {args.settle} s, "
            f"batch window {args.batch_window} s); {misses} not visible within {PATIENCE:.0f} s"
        )
        rows = []
        for label, values in (
            ("exportImage shows it", exports),
            ("service info covers it", infos),
            ("both (ingest-to-visible)", visible),
            ("WebSocket message", messages),
        ):
            lat = Latency.of(values)
            rows.append([label, str(lat.n), ms(lat.p50), ms(lat.p99), ms(lat.max)])
        print(table(["from the rename until", "n", "p50 ms", "p99 ms", "max ms"], rows))
        from livemosaic.core.watch_rules import DEFAULT_BATCH_QUIET_SECONDS

        wait = min(args.batch_window, DEFAULT_BATCH_QUIET_SECONDS)  # renamed in: no settle wait
        p50 = Latency.of(visible).p50
        print(
            f"baseline: configured wait (batch window or quiet period) {ms(wait)} ms; in-process "
            "inspect "
            f"of one file p50 {ms(floor.p50)} ms (p99 {ms(floor.p99)}); ingest-to-visible p50 "
            f"minus both {ms(p50 - wait - floor.p50)} ms (commit, refresh, HTTP, polling)"
        )

        # -- 2. burst ---------------------------------------------------------------------------
        db = work / "data" / "catalog.db"
        since_ms = int(time.time() * 1000)
        right = max(bounds(c, r, args.burst_size)[2] for c, r in cells)
        bottom = min(bounds(c, r, args.burst_size)[1] for c, r in cells)
        t_start = time.monotonic()
        for path in burst_files:
            os.rename(path, work / "in/burst" / path.name)
        t_moved = time.monotonic() - t_start
        expected = args.burst + 1
        counted = t_covered = None
        count = 0
        while time.monotonic() - t_start < args.burst_timeout:
            if counted is None:
                count = client.count("Bench/Burst")
                if count >= expected:
                    counted = time.monotonic() - t_start
            if counted is not None and t_covered is None:
                ext = client.info("Bench/Burst")["extent"]
                if ext["xmax"] >= right - 1 and ext["ymin"] <= bottom + 1:
                    t_covered = time.monotonic() - t_start
            if counted is not None and t_covered is not None:
                break
            time.sleep(0.1)
        jobs, still_open = refresh_jobs(db, "bench/burst", since_ms)
        deadline = time.monotonic() + 30
        while still_open and time.monotonic() < deadline:
            time.sleep(0.2)
            jobs, still_open = refresh_jobs(db, "bench/burst", since_ms)
        print(
            f"\n[burst] {args.burst} COGs of {args.burst_size} px moved in within {ms(t_moved)} ms"
        )
        if counted is None:
            print(f"  only {count - 1} of {args.burst} in the catalog after {args.burst_timeout} s")
        else:
            print(f"  all in the catalog after {counted:.2f} s: {args.burst / counted:.0f} files/s")
        print(
            f"  baseline: the same files in one in-process pipeline batch (no server, no "
            f"watcher): {burst_floor:.2f} s, {args.burst / burst_floor:.0f} files/s"
        )
        if t_covered is not None:
            print(f"  service info covers the whole burst after {t_covered:.2f} s")
        print(f"  Refresh Service jobs submitted by the watcher: {jobs} (still open: {still_open})")
        print(f"\n{machine_line()}; parallel capacity {parallel_capacity():.2f}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
