"""Reading choices measured: GDAL block cache size and the budget of open dataset handles.

For each configuration a fresh child process (GDAL reads ``GDAL_CACHEMAX`` once, at its first
raster) ingests the generated COG tiles of ``make_tiles.py`` into a temporary catalog and runs
the same in-process ``ImageExporter.export`` requests (512x512 PNG, whole extent, middle scale
and native, at random positions) on ``--threads`` threads, with ``--handles`` open datasets
shared by the threads. It prints, per configuration and scale, CPU ms per request (process
time / requests) and wall ms per request, then the process's peak RSS and its open file
descriptors after the requests.

    .venv/bin/python bench/read_bench.py --quick
    .venv/bin/python bench/read_bench.py --tiles-dir /tmp/t --cache-mb 16,64,256 --handles 64,1024
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import table
from export_bench import DATASET, TILE_SEED, export_request, make_scales
from make_tiles import TileGrid, make_tiles

from livemosaic.adapters.raster import read as raster_read
from livemosaic.app import build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.settings import Settings


def child(args: argparse.Namespace, grid: TileGrid) -> None:
    """Run the requests in this process with a budget of ``--handles`` open datasets shared by
    the reader threads; print JSON."""
    raster_read.HANDLE_BUDGET = args.handles
    raster_read.MIN_HANDLES = 1
    work = Path(tempfile.mkdtemp(prefix="livemosaic-read-bench-"))
    settings = Settings(
        _env_file=None,
        data_dir=work / "data",
        data_folders=[args.tiles_dir],
        max_mosaic_image_count=1000,
    )
    ctx = build_context(settings)
    try:
        Ingestor(ctx.catalog, ctx.source, [args.tiles_dir]).create_dataset(DATASET, "EPSG:3857")
        Ingestor(ctx.catalog, ctx.source, [args.tiles_dir]).add_paths(DATASET, [args.tiles_dir])
        ctx.publisher.publish(ServiceDefinition(name="Tiles", folder="Bench", dataset=DATASET))
        snapshot = ctx.registry.get("Bench", "Tiles")
        extent = snapshot.summary.extent
        assert extent is not None
        out: dict[str, object] = {}
        with ThreadPoolExecutor(args.threads) as pool:
            for scale in make_scales(extent, grid.pixel, args.requests, args.seed):
                requests = [export_request(b) for b in scale.boxes]
                list(pool.map(lambda r: ctx.exporter.export(snapshot, r), requests[:4]))  # warm
                cpu0, wall0 = time.process_time(), time.perf_counter()
                list(pool.map(lambda r: ctx.exporter.export(snapshot, r), requests))
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                out[scale.name] = [1000 * cpu / len(requests), 1000 * wall / len(requests)]
            fds = Path("/proc/self/fd")
            out["fds"] = len(list(fds.iterdir())) if fds.is_dir() else -1
        out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
    finally:
        ctx.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cols", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--tiles-dir", type=Path)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cache-mb", default="16,64,256", help="GDAL_CACHEMAX values (MiB)")
    parser.add_argument(
        "--handles", default="64,1024", help="open datasets kept by the process (all threads)"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="6x6 tiles of 512 px, 8 requests")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.cols, args.rows, args.tile_size, args.requests = 6, 6, 512, 8
    grid = TileGrid(args.cols, args.rows, args.tile_size, overlap=max(args.tile_size // 32, 1))
    if args.child:
        args.handles = int(args.handles)
        child(args, grid)
        return 0
    temp = None
    if args.tiles_dir is None:
        temp = Path(tempfile.mkdtemp(prefix="livemosaic-read-tiles-"))
        args.tiles_dir = temp
    try:
        make_tiles(args.tiles_dir, grid, TILE_SEED)
        print(f"read_bench: {grid.count} tiles of {grid.size} px, {args.threads} threads, PNG 512²")
        rows = []
        for cache in args.cache_mb.split(","):
            for handles in args.handles.split(","):
                cmd = [sys.executable, __file__, "--child", "--handles", handles]
                cmd += ["--tiles-dir", str(args.tiles_dir), "--requests", str(args.requests)]
                cmd += ["--threads", str(args.threads), "--seed", str(args.seed)]
                cmd += ["--cols", str(args.cols), "--rows", str(args.rows)]
                cmd += ["--tile-size", str(args.tile_size)]
                env = {**os.environ, "GDAL_CACHEMAX": cache}
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                res = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(
                    [cache, handles]
                    + [f"{res[s][0]:.1f} / {res[s][1]:.1f}" for s in ("whole", "mid", "native")]
                    + [f"{res['rss_mb']:.0f}", str(res["fds"])]
                )
        head = ["cache MiB", "handle budget", "whole", "mid", "native", "peak RSS MiB", "open fds"]
        print("cells: CPU ms / wall ms per request")
        print(table(head, rows))
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
