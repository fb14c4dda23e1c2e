"""Generate a grid of Cloud-Optimized GeoTIFF tiles for the benchmarks.

Each tile is 8-bit RGB in EPSG:3857 with smooth large-scale colour fields (continuous across
tiles), a little per-pixel noise, internal 256x256 tiling, DEFLATE and internal overviews
(GDAL's COG driver). Neighbouring tiles overlap by a few pixels on one shared pixel grid, as
scenes of a survey do. The same seed gives the same files.

    .venv/bin/python bench/make_tiles.py /tmp/tiles --cols 12 --rows 12 --size 1024
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

ORIGIN = (1_000_000.0, 6_000_000.0)  # top-left corner of the mosaic, EPSG:3857 metres
GENERATOR = 2  # bump when the pixels or the file layout change, so old tiles are not reused
DEM_NODATA = -9999.0  # nodata of the float32 elevation tiles (kind "dem")
KINDS = ("rgb", "dem")


@dataclass(frozen=True, slots=True)
class TileGrid:
    """Layout of the generated mosaic."""

    cols: int = 12
    rows: int = 12
    size: int = 1024  # pixels per side
    overlap: int = 32  # pixels shared with the neighbour on each side
    pixel: float = 10.0  # metres

    @property
    def step(self) -> int:
        """Pixels between the origins of neighbouring tiles."""
        return self.size - self.overlap

    @property
    def count(self) -> int:
        """Number of tiles."""
        return self.cols * self.rows

    def extent(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the whole mosaic in EPSG:3857."""
        width = (self.step * (self.cols - 1) + self.size) * self.pixel
        height = (self.step * (self.rows - 1) + self.size) * self.pixel
        x0, y0 = ORIGIN
        return (x0, y0 - height, x0 + width, y0)


def _field(gx: np.ndarray, gy: np.ndarray, phase: float) -> np.ndarray:
    """A smooth 0..1 field of the global pixel coordinates (a few sinusoids, no tile seams)."""
    f = (
        np.sin(gx / 900.0 + phase) * np.cos(gy / 1300.0 - phase)
        + 0.5 * np.sin((gx + gy) / 400.0 + 2 * phase)
        + 0.25 * np.cos(gx / 150.0 - gy / 210.0 + phase)
    )
    return (f + 1.75) / 3.5


def _parcels(xs: np.ndarray, ys: np.ndarray, salt: int) -> np.ndarray:
    """A -30..30 offset per field parcel: a hash of the parcel's global cell (sharp edges).

    ``xs`` and ``ys`` are the global pixel columns and rows (1-D); parcels are 97 pixels wide
    and slanted (rows shift by 0.6 per column), in integer arithmetic for speed.
    """
    ix = (xs // 97).astype(np.uint32)[None, :]
    iy = ((5 * ys[:, None] + 3 * xs[None, :]) // 355).astype(np.uint32)
    h = (ix * np.uint32(73856093)) ^ (iy * np.uint32(19349663)) ^ np.uint32(salt * 83492791)
    return (h % np.uint32(251)).astype(np.float32) * (60.0 / 250.0) - 30.0


def tile_pixels(grid: TileGrid, col: int, row: int, rng: np.random.Generator) -> np.ndarray:
    """The (3, size, size) uint8 pixels of one tile."""
    n = grid.size
    xs = np.arange(n, dtype=np.int64) + col * grid.step
    ys = np.arange(n, dtype=np.int64) + row * grid.step
    # the smooth fields change slowly: evaluate them every 8th pixel and repeat
    k = 8
    cx = xs[::k].astype(np.float32)[None, :]
    cy = ys[::k].astype(np.float32)[:, None]
    base = _parcels(xs, ys, 1) + 50.0
    bands = []
    for phase, gain in ((0.0, 170.0), (1.3, 150.0), (2.6, 130.0)):
        smooth = np.repeat(np.repeat(_field(cx, cy, phase) * gain, k, 0), k, 1)[:n, :n]
        noise = rng.integers(-6, 7, size=(n, n), dtype=np.int8) + rng.integers(
            -6, 7, size=(n, n), dtype=np.int8
        )
        bands.append(np.clip(smooth + base + noise, 0, 255).astype(np.uint8))
    return np.stack(bands)


def dem_pixels(grid: TileGrid, col: int, row: int, rng: np.random.Generator) -> np.ndarray:
    """The (1, size, size) float32 elevations of one tile, in metres, with nodata "lakes".

    Smooth terrain (the colour fields as hills, 50..1200 m) with parcel-sized terraces and a
    little noise; where a second field is low the pixels are ``DEM_NODATA``.
    """
    n = grid.size
    xs = np.arange(n, dtype=np.int64) + col * grid.step
    ys = np.arange(n, dtype=np.int64) + row * grid.step
    k = 8
    cx = xs[::k].astype(np.float32)[None, :]
    cy = ys[::k].astype(np.float32)[:, None]
    hills = np.repeat(np.repeat(_field(cx, cy, 0.7), k, 0), k, 1)[:n, :n]
    lakes = np.repeat(np.repeat(_field(cx * 1.7, cy * 1.3, 2.1), k, 0), k, 1)[:n, :n]
    z = 50.0 + 1150.0 * hills + 0.1 * _parcels(xs, ys, 2) + rng.normal(0, 0.5, (n, n))
    z = z.astype(np.float32)
    z[lakes < 0.12] = DEM_NODATA
    return z[None]


def write_tile(
    path: Path, grid: TileGrid, col: int, row: int, rng: np.random.Generator, kind: str = "rgb"
) -> None:
    """Write one COG tile (written whole to a sibling name, then renamed).

    ``kind`` "rgb": 8-bit RGB, DEFLATE; "dem": float32 elevations, ZSTD with the floating
    point predictor (3), nodata ``DEM_NODATA``.
    """
    x0, y0 = ORIGIN
    transform = from_origin(
        x0 + col * grid.step * grid.pixel, y0 - row * grid.step * grid.pixel, grid.pixel, grid.pixel
    )
    profile = {
        "driver": "COG",
        "width": grid.size,
        "height": grid.size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:3857",
        "transform": transform,
        "blocksize": 256,
        "compress": "DEFLATE",
        "overviews": "AUTO",
        "overview_resampling": "AVERAGE",
    }
    if kind == "dem":
        pixels = dem_pixels(grid, col, row, rng)
        profile |= {"count": 1, "dtype": "float32", "compress": "ZSTD", "predictor": 3}
        profile |= {"nodata": DEM_NODATA}
    else:
        pixels = tile_pixels(grid, col, row, rng)
    tmp = path.with_name(path.name + ".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(pixels)
    tmp.replace(path)


def _write_one(job: tuple[Path, TileGrid, int, int, int, str]) -> Path:
    path, grid, col, row, seed, kind = job
    write_tile(path, grid, col, row, np.random.default_rng([seed, row, col]), kind)
    return path


def tile_paths(out_dir: Path, grid: TileGrid) -> list[Path]:
    """Where the tiles of a grid go (row-major)."""
    return [
        out_dir / f"tile_r{row:02d}_c{col:02d}.tif"
        for row in range(grid.rows)
        for col in range(grid.cols)
    ]


def _manifest(grid: TileGrid, seed: int, kind: str = "rgb") -> dict[str, object]:
    extra = {} if kind == "rgb" else {"kind": kind}  # rgb folders of older runs stay valid
    return {**asdict(grid), "seed": seed, "generator": GENERATOR, **extra}


def tiles_ready(out_dir: Path, grid: TileGrid, seed: int, kind: str = "rgb") -> bool:
    """True when ``out_dir`` already holds every tile of this grid, seed and kind."""
    manifest = out_dir / "tiles.json"
    try:
        same = json.loads(manifest.read_text()) == _manifest(grid, seed, kind)
    except (OSError, ValueError):
        return False
    return same and all(p.exists() for p in tile_paths(out_dir, grid))


def make_tiles(
    out_dir: Path, grid: TileGrid, seed: int = 42, jobs: int = 0, kind: str = "rgb"
) -> list[Path]:
    """Write ``grid.count`` COG tiles of ``kind`` into ``out_dir``; their paths (row-major).

    A folder that already holds tiles of the same grid, seed and kind (``tiles_ready``) is
    reused as it is. ``jobs`` worker processes write tiles (0 = one per core).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = tile_paths(out_dir, grid)
    if tiles_ready(out_dir, grid, seed, kind):
        return paths
    manifest = out_dir / "tiles.json"
    manifest.unlink(missing_ok=True)
    work = [(p, grid, i % grid.cols, i // grid.cols, seed, kind) for i, p in enumerate(paths)]
    workers = jobs or os.cpu_count() or 1
    if workers == 1:
        for job in work:
            _write_one(job)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_one, work, chunksize=4))
    manifest.write_text(json.dumps(_manifest(grid, seed, kind)))
    return paths


def describe(path: Path) -> str:
    """One line on a tile's layout (to show it is a proper COG)."""
    with rasterio.open(path) as ds:
        layout = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "?")
        return (
            f"{path.name}: {ds.width}x{ds.height}x{ds.count} {ds.dtypes[0]} {ds.crs}, "
            f"blocks {ds.block_shapes[0]}, overviews {ds.overviews(1)}, layout {layout}, "
            f"compression {ds.compression.value if ds.compression else 'none'}"
        )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--cols", type=int, default=12)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--size", type=int, default=1024, help="pixels per tile side")
    parser.add_argument("--overlap", type=int, default=32, help="pixels shared with neighbours")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=0, help="writer processes (0 = per core)")
    parser.add_argument(
        "--kind", choices=KINDS, default="rgb", help="8-bit RGB imagery or a float32 DEM"
    )
    args = parser.parse_args(argv)
    grid = TileGrid(args.cols, args.rows, args.size, args.overlap)
    reused = tiles_ready(args.out_dir, grid, args.seed, args.kind)
    start = time.perf_counter()
    paths = make_tiles(args.out_dir, grid, args.seed, args.jobs, args.kind)
    took = time.perf_counter() - start
    mb = sum(p.stat().st_size for p in paths) / 1e6
    verb = "reused" if reused else f"wrote in {took:.1f} s"
    print(f"{len(paths)} tiles ({mb:.0f} MB) {verb}: {args.out_dir}")
    print(describe(paths[0]))
    print("extent (EPSG:3857): " + ", ".join(f"{v:.0f}" for v in grid.extent()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
