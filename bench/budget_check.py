"""The memory estimate of exportImage against what real requests allocate.

Builds a catalog of sample rasters in a temporary folder (the four mosaic tiles, 8-bit RGB,
and the float32 DEM, ``--data``), then runs a few exports in this process, one at a time. For
each it prints the estimate (``ImageExporter.memory_estimate``, core.budget), the peak of
Python-tracked allocations during the request (``tracemalloc``: every numpy array, not GDAL's
own buffers) and the peak growth of the resident set (``VmRSS``, sampled every 10 ms; includes
GDAL's buffers and block cache), and the ratios measured / estimated. The estimate is meant to
be an upper bound: ratios at or below 1.

    .venv/bin/python bench/budget_check.py --data ../shared/data
    .venv/bin/python bench/budget_check.py --data ../shared/data --quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from livemosaic.adapters.memory import rss_bytes, trim_heap
from livemosaic.app import build_context
from livemosaic.core.export import ExportRequest
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.mosaic_rules import MosaicRule
from livemosaic.settings import Settings

MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "LIVEMOSAIC_SAMPLE_DATA", "../shared/data")))  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smaller images")
    args = parser.parse_args()
    data = args.data.resolve()
    work = Path(tempfile.mkdtemp(prefix="lm-budget-"))
    scale = 0.25 if args.quick else 1.0
    try:
        settings = Settings(
            data_dir=work / "data", data_folders=[data], gdal_cache_mb=64, request_memory_mb=100_000
        )
        ctx = build_context(settings)
        ing = Ingestor(ctx.catalog, ctx.source, [data])
        ing.create_dataset("tiles")
        ing.add_paths("tiles", sorted((data / "mosaic").glob("rgb*.tif")))
        ing.create_dataset("dem")
        ing.add_paths("dem", [data / "dem/dem.tif"])
        ctx.publisher.publish(ServiceDefinition(name="tiles", dataset="tiles"))
        ctx.publisher.publish(ServiceDefinition(name="dem", dataset="dem"))
        cases = [
            ("tiles", "png", None, "First", 6000, 4100),
            ("tiles", "tiff", "F64", "First", 6000, 4100),
            ("tiles", "tiff", None, "Mean", 6000, 4100),
            ("tiles", "lerc", "F32", "First", 6000, 4100),
            ("tiles", "bsq", "U16", "Max", 6000, 4100),
            ("dem", "tiff", "F64", "First", 6000, 4100),
            ("dem", "png", None, "Blend", 6000, 4100),
        ]
        print(f"{'request':44} {'estimate':>9} {'traced':>9} {'rss+':>9} {'t/e':>5} {'r/e':>5}")
        for service, fmt, ptype, op, w, h in cases:
            snap = ctx.registry.find("", service)
            assert snap is not None and snap.summary.extent is not None
            width, height = max(1, int(w * scale)), max(1, int(h * scale))
            method = "None" if op == "First" else "Center"
            rule = MosaicRule(method=method, operation=op)  # type: ignore[arg-type]
            req = ExportRequest(
                extent=snap.summary.extent, crs=snap.dataset.crs, width=width, height=height,
                format=fmt, pixel_type=ptype, mosaic_rule=rule,  # type: ignore[arg-type]
            )  # fmt: skip
            req = replace(req)
            estimate = ctx.exporter.memory_estimate(snap, req)
            trim_heap()
            time.sleep(0.2)
            start = rss_bytes()
            peak = [start]
            done = threading.Event()

            def sample(peak: list[int] = peak, done: threading.Event = done) -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_bytes())
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            tracemalloc.start()
            result = ctx.exporter.export(snap, req)
            traced = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            done.set()
            sampler.join()
            del result
            grown = peak[0] - start
            name = f"{service} {width}x{height} {op} {ptype or 'native'} {fmt}"
            print(
                f"{name:44} {estimate / MIB:8.0f}M {traced / MIB:8.0f}M {grown / MIB:8.0f}M "
                f"{traced / estimate:5.2f} {grown / estimate:5.2f}"
            )
        ctx.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
