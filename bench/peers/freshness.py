"""Freshness: what each server needs before a new, complete file in the folder is drawn.

- **livemosaic** watches the folder itself: ``bench/freshness_bench.py`` (default watch
  settings, a file renamed into the folder -> visible in exportImage and in the service info)
  is run as it is and its table printed.
- **MapServer** draws what its GDAL tile index lists: the index must be regenerated
  (``gdaltindex`` over every file, what a cron job or a watcher script runs).
- **TiTiler** draws what its MosaicJSON lists: the new file must be added
  (cogeo-mosaic's ``update``: footprint of the new file, then the whole JSON rewritten), and
  TiTiler's mosaic cache (5 minutes by default) must expire or be disabled.

For 1,000 and 10,000 (and with ``--with-100k`` 100,000) tiny files (16×16 px) already
catalogued, it times that step for the peers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from peers import servers

TINY = 16  # pixels per side
PIXEL = 10.0
ORIGIN = (2_000_000.0, 6_000_000.0)


def tiny_files(folder: Path, count: int, start: int = 0) -> list[Path]:
    """``count`` 16×16 GeoTIFFs on a grid, one per cell, numbered from ``start``."""
    folder.mkdir(parents=True, exist_ok=True)
    side = 1000
    data = np.full((1, TINY, TINY), 7, np.uint8)
    out = []
    for i in range(start, start + count):
        col, row = i % side, i // side
        transform = from_origin(
            ORIGIN[0] + col * TINY * PIXEL, ORIGIN[1] - row * TINY * PIXEL, PIXEL, PIXEL
        )
        path = folder / f"f_{i:06d}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", width=TINY, height=TINY, count=1, dtype="uint8",
            crs="EPSG:3857", transform=transform,
        ) as dst:  # fmt: skip
            dst.write(data)
        out.append(path)
    return out


def mosaic_tool(*args: str) -> float:
    """Run the MosaicJSON tool in the peers' virtualenv; the seconds its work took."""
    tool = Path(__file__).parent / "mosaicjson_tool.py"
    out = subprocess.run(
        [str(servers.peer_python()), str(tool), *args], check=True, capture_output=True, text=True
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def run(sizes: list[int], args: argparse.Namespace) -> int:
    """Measure every size; print the table; run freshness_bench for livemosaic."""
    work = Path(tempfile.mkdtemp(prefix="livemosaic-peers-fresh-"))
    rows = []
    try:
        for n in sizes:
            folder = work / f"items{n}"
            t0 = time.perf_counter()
            files = tiny_files(folder, n)
            made = time.perf_counter() - t0
            new = tiny_files(folder, 1, start=n)
            listing = work / f"list{n}.txt"
            listing.write_text("".join(f"{f}\n" for f in files))
            mosaic = work / f"mosaic{n}.json"
            create = mosaic_tool("create", str(mosaic), str(listing))
            t0 = time.perf_counter()
            servers.gdaltindex(work, f"index{n}", [*files, *new])
            index = time.perf_counter() - t0
            update = mosaic_tool("update", str(mosaic), str(new[0]))
            rows.append((n, made, index, create, update))
            print(
                f"  {n} items: files written in {made:.1f} s, gdaltindex {index:.2f} s, "
                f"MosaicJSON create {create:.2f} s, update {update:.2f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n## Peers: the step before a new file can be drawn (seconds)")
    print(
        f"{'items':>8}  {'MapServer: gdaltindex (all files)':>34}  {'TiTiler: MosaicJSON update':>27}"
    )
    for n, _, index, _, update in rows:
        print(f"{n:>8}  {index:>34.2f}  {update:>27.2f}")
    print(
        "(MapServer reads the new index on its next request; TiTiler's cached mosaic keeps "
        "the old list for up to COGEO_MOSAIC_CACHE_TTL = 300 s unless the cache is disabled.)"
    )
    print("\n## livemosaic: bench/freshness_bench.py (default watch settings)")
    bench = Path(__file__).resolve().parent.parent / "freshness_bench.py"
    command = [sys.executable, str(bench)] + (["--quick"] if args.quick else [])
    return subprocess.run(command, check=False).returncode
