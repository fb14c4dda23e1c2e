"""Soak: a bounded storm of the largest allowed exports keeps the server's memory under a
ceiling derived from its settings, and leaves it where it started.

A real ``livemosaic serve`` process serves ``storm``, a mosaic of twelve items: eight copies
of the sample RGB.byte.tif and the four sample mosaic tiles, all over the same place, so that
every export reads and warps every item. Three clients send exports for at most
``STORM_SECONDS`` (at most ``STORM_REQUESTS`` of them): GeoTIFF F64 (First) and LERC F32
(Mean) images just inside the per-request memory limit, and one in four twice as large
(refused with 400). The
server has two read threads and a memory budget of two such requests; the third client's
request waits for room, and is answered 503 when there is none in time.

The test samples the server's resident set (``VmRSS``) during and after the storm. The
ceiling: the RSS at the start, plus the memory budget (what admitted requests may hold
together), plus GDAL's block cache, plus 128 MiB for the read threads' open datasets and
allocator slack. At the end, the RSS must be back within ``END_MARGIN_MB`` (GDAL's cache plus
96 MiB) of the start, measured after a warm-up that opened the datasets on both read threads
(freed heap is handed back after each large request). No answer may be a 5xx other
than 503 busy.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.memory import rss_bytes
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.budget import MIB, ExportShape, export_bytes
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from tests.figures import record

BIN = Path(sys.executable).parent / "livemosaic"
SVC = "/arcgis/rest/services/storm/ImageServer"
REQUEST_MB = 192
BUDGET_MB = 2 * REQUEST_MB
GDAL_CACHE_MB = 64
THREADS = 2
CLIENTS = 3
STORM_REQUESTS = 30
STORM_SECONDS = 45.0
# GDAL's cache fills during the storm; the allocator and the threads' state keep some more
# (a server settles about 100 MiB above a warm start, then stays there: no growth over rounds)
END_MARGIN_MB = GDAL_CACHE_MB + 96
MEAN = '{"mosaicMethod":"esriMosaicNone","mosaicOperation":"MT_MEAN"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_catalog(shared_data: Path, rasters: Path, data_dir: Path) -> None:
    rasters.mkdir(parents=True)
    for i in range(8):
        shutil.copyfile(shared_data / "imagery/RGB.byte.tif", rasters / f"scene{i}.tif")
    for tile in sorted((shared_data / "mosaic").glob("rgb*.tif")):
        shutil.copyfile(tile, rasters / tile.name)
    stores = open_stores(f"sqlite:///{(data_dir / 'catalog.db').resolve()}")
    try:
        ing = Ingestor(stores.catalog, RasterioSource([rasters]), [rasters])
        ing.create_dataset("storm")
        report = ing.add_paths("storm", sorted(rasters.glob("*.tif")))
        assert report.added == 12, report.rejected
        publisher = Publisher(stores.catalog, ServiceRegistry(), RasterioProjector())
        publisher.publish(ServiceDefinition(name="storm", dataset="storm"))
    finally:
        stores.close()


def largest_side(operation: str, dtype: str, fmt: str) -> int:
    """The largest square export of the storm's items that fits the request limit."""

    def need(side: int) -> int:
        shape = ExportShape(
            rows=side, cols=side, bands=3, item_dtype=np.dtype(np.uint8), operation=operation,
            out_bands=3, out_dtype=np.dtype(dtype), format=fmt,
        )  # fmt: skip
        return export_bytes(shape)

    side = 16
    while need(side + 16) <= REQUEST_MB * MIB:
        side += 16
    return side


class Sampler(threading.Thread):
    """Samples a process's RSS every 20 ms, keeping the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_bytes(pid)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.02)


def test_memory_storm(shared_data: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rasters = tmp_path / "rasters"
    build_catalog(shared_data, rasters, data_dir)
    port = free_port()
    env = {
        **os.environ,
        "LIVEMOSAIC_DATA_FOLDERS": str(rasters),
        "LIVEMOSAIC_READ_THREADS": str(THREADS),
        "LIVEMOSAIC_REQUEST_MEMORY_MB": str(REQUEST_MB),
        "LIVEMOSAIC_MEMORY_BUDGET_MB": str(BUDGET_MB),
        "LIVEMOSAIC_GDAL_CACHE_MB": str(GDAL_CACHE_MB),
        "LIVEMOSAIC_ADMISSION_WAIT_SECONDS": "2",
        "LIVEMOSAIC_MAX_WAITING_REQUESTS": "4",
        "LIVEMOSAIC_BUSY_RETRY_AFTER_SECONDS": "1",
    }
    env.pop("GDAL_CACHEMAX", None)
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(BIN), "--data-dir", str(data_dir), "serve", "--port", str(port),
             "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        info = None
        deadline = time.monotonic() + 60
        while info is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                info = httpx.get(base + SVC, params={"f": "json"}, timeout=5).json()
            except httpx.HTTPError:
                time.sleep(0.2)
        assert info is not None and "extent" in info, log_path.read_text()[-2000:]
        e = info["extent"]
        bbox = f"{e['xmin']},{e['ymin']},{e['xmax']},{e['ymax']}"
        first, mean = '{"mosaicMethod":"esriMosaicNone"}', MEAN
        tiff = largest_side("First", "float64", "tiff")
        lerc = largest_side("Mean", "float32", "lerc")
        kinds = [
            {"size": f"{tiff},{tiff}", "pixelType": "F64", "format": "tiff", "mosaicRule": first},
            {"size": f"{lerc},{lerc}", "pixelType": "F32", "format": "lerc", "mosaicRule": mean},
            {"size": f"{tiff},{tiff}", "pixelType": "F64", "format": "tiff", "mosaicRule": first},
            {"size": f"{2 * tiff},{tiff}", "pixelType": "F64", "format": "tiff",
             "mosaicRule": first},
        ]  # fmt: skip

        def warm_up() -> None:  # both read threads open the datasets and fill GDAL's cache
            with httpx.Client(timeout=120) as http:
                r = http.get(base + SVC + "/exportImage", params={
                    "bbox": bbox, "size": "640,640", "mosaicRule": MEAN, "f": "image"})  # fmt: skip
                assert r.status_code == 200

        warmers = [threading.Thread(target=warm_up) for _ in range(THREADS)]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join(timeout=120)
        time.sleep(1.0)
        rss_start = rss_bytes(proc.pid)
        sampler = Sampler(proc.pid)
        sampler.start()
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        sent = [0]
        storm_end = time.monotonic() + STORM_SECONDS

        def client(index: int) -> None:
            with httpx.Client(timeout=120) as http:
                while time.monotonic() < storm_end:
                    with lock:
                        if sent[0] >= STORM_REQUESTS:
                            return
                        sent[0] += 1
                        number = sent[0]
                    params = {"bbox": bbox, "f": "image", **kinds[(number + index) % len(kinds)]}
                    r = http.get(base + SVC + "/exportImage", params=params)
                    if r.status_code == 503:
                        outcome = "busy_503"
                        assert int(r.headers["retry-after"]) >= 1
                    elif r.status_code >= 500:
                        outcome = f"http_{r.status_code}"
                    elif r.headers["content-type"].startswith("application/json"):
                        outcome = f"code_{r.json()['error']['code']}"
                    else:
                        outcome = "ok"
                    with lock:
                        outcomes[outcome] += 1

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=STORM_SECONDS + 180)
        storm_seconds = time.monotonic() - started
        time.sleep(2.0)
        sampler.stop.set()
        sampler.join()
        rss_end = rss_bytes(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    requests = sum(outcomes.values())
    errors_5xx = sum(n for k, n in outcomes.items() if k.startswith("http_5") or k == "code_500"
                     or k == "code_504")  # fmt: skip
    ceiling = rss_start + (BUDGET_MB + GDAL_CACHE_MB + 128) * MIB
    record(
        "memory_storm",
        requests=requests,
        ok=outcomes["ok"],
        busy_503=outcomes["busy_503"],
        too_large_400=outcomes["code_400"],
        errors_5xx=errors_5xx,
        seconds=round(storm_seconds, 1),
        rss_start_mb=round(rss_start / MIB),
        rss_peak_mb=round(sampler.peak / MIB),
        rss_end_mb=round(rss_end / MIB),
        ceiling_mb=round(ceiling / MIB),
    )
    assert errors_5xx == 0, outcomes
    assert set(outcomes) <= {"ok", "busy_503", "code_400"}, outcomes
    assert outcomes["ok"] >= 4, outcomes
    assert outcomes["code_400"] >= 1, outcomes
    assert sampler.peak < ceiling, (sampler.peak / MIB, ceiling / MIB, outcomes)
    assert rss_end < rss_start + END_MARGIN_MB * MIB, (rss_start / MIB, rss_end / MIB)
