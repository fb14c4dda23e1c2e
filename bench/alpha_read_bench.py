"""What keeping the transparent pixels out of bilinear reads costs, per kind of overview tile.

    .venv/bin/python bench/alpha_read_bench.py            # median of 7 rounds (under a minute)
    .venv/bin/python bench/alpha_read_bench.py --quick    # 3 rounds

An overview tile holds its bands and an alpha band; GDAL leaves the pixels the alpha makes
transparent out of a resampled read only when it takes the alpha band for the bands' mask
(one or three 8- or 16-bit unsigned bands), so ``CogTileWriter`` gives other integer tiles
an internal mask too, and the reader sends an integer item whose alpha is no mask through
the warper, which weighs every pixel by its alpha. For an RGB, a 4-band and an int16 tile of
1024 px with a hole, this prints the CPU ms of ``CogTileWriter.write_tile`` and of a bilinear
``read_item`` of the whole tile at 1/3 and 1/2.3 of its resolution, for the tile as written
and for the same tile without its mask (an alpha band only, as tiles were written before:
read through the warper, from internal overviews that already hold the fill blended in),
and the smallest valid value read (the data is 180..200: less is the fill blended in). The
two tiles take turns in every round, so that a change in machine load hits both alike.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from common import table
from rasterio.enums import ColorInterp
from rasterio.io import MemoryFile

from livemosaic.adapters.raster import RasterioSource
from livemosaic.adapters.raster.overview_tiles import BLOCK_SIZE, CogTileWriter
from livemosaic.adapters.raster.read import read_item
from livemosaic.core.models import Extent
from livemosaic.core.ports import InspectOptions, PixelBlock, ReadRequest

SIZE = 1024
EXTENT = Extent(0.0, 0.0, SIZE * 10.0, SIZE * 10.0)
CASES = [("uint8", 3), ("uint8", 4), ("int16", 1)]


def holed_block(dtype: str, bands: int) -> PixelBlock:
    """Values 180..200, 0 in a disc and a 77-pixel strip on the west side (transparent)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    valid = ~(((xx - 500) ** 2 + (yy - 520) ** 2 < 200**2) | (xx < 77))
    data = (180 + 20 * np.random.default_rng(1).random((bands, SIZE, SIZE))).astype(dtype)
    data[:, ~valid] = 0
    return PixelBlock(data=data, valid=valid, band_names=(), nodata=None)


def write_bare(path: str, block: PixelBlock) -> None:
    """The tile as written before: the bands and an alpha band, no mask."""
    bands = block.data.shape[0]
    alpha = np.where(block.valid, 255, 0).astype(block.data.dtype)
    transform = Affine(10.0, 0.0, EXTENT.xmin, 0.0, -10.0, EXTENT.ymax)
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": bands + 1,
        "dtype": block.data.dtype.name,
        "crs": "EPSG:3857",
        "transform": transform,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(block.data, indexes=list(range(1, bands + 1)))
            dst.write(alpha, bands + 1)
            dst.colorinterp = [*dst.colorinterp[:-1], ColorInterp.alpha]
        with mem.open() as src:
            rasterio.shutil.copy(
                src,
                path,
                driver="COG",
                compress="DEFLATE",
                blocksize=BLOCK_SIZE,
                overview_resampling="average",
            )


def cpu_ms(action: Callable[[], object], repeat: int) -> float:
    """The median CPU ms of ``action`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 7
    folder = Path(tempfile.mkdtemp(prefix="alpha_read_bench_"))
    try:
        source = RasterioSource([folder])
        options = InspectOptions("EPSG:3857", validate_pixels=False, compute_stats=False)
        writer = CogTileWriter()
        rows = []
        for dtype, bands in CASES:
            block = holed_block(dtype, bands)
            tile, bare = str(folder / "tile.tif"), str(folder / "bare.tif")
            write = partial(writer.write_tile, tile, block, EXTENT, "EPSG:3857")
            write_ms = statistics.median(cpu_ms(write, 1) for _ in range(rounds))
            write_bare(bare, block)
            items = {
                "as written": source.inspect(tile, options)[0],
                "no mask": source.inspect(bare, options)[0],
            }
            for width in (SIZE // 3, int(SIZE / 2.3)):
                request = ReadRequest(EXTENT, "EPSG:3857", width, width, "bilinear")
                times: dict[str, list[float]] = {k: [] for k in items}
                for _ in range(rounds):
                    for kind, item in items.items():
                        read = partial(read_item, item, request, source.confine)
                        times[kind].append(cpu_ms(read, 5))
                lows = {}
                for kind, item in items.items():
                    out = read_item(item, request, source.confine)
                    assert out is not None
                    lows[kind] = int(out.data[:, out.valid].min())
                written, no_mask = (statistics.median(times[k]) for k in items)
                rows.append(
                    [
                        f"{dtype} x{bands}",
                        f"{write_ms:.0f}",
                        str(width),
                        f"{written:.2f}",
                        str(lows["as written"]),
                        f"{no_mask:.2f}",
                        str(lows["no mask"]),
                        f"{no_mask / written:.2f}",
                    ]
                )
        header = [
            "tile",
            "write ms",
            "read px",
            "read ms",
            "min",
            "no mask ms",
            "min",
            "no mask / as written",
        ]
        print(table(header, rows))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
