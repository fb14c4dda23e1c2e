"""What each exportImage output format costs: encode CPU ms and bytes, per candidate setting.

    .venv/bin/python bench/encode_bench.py            # 8 images, median of 5 (about 3 min)
    .venv/bin/python bench/encode_bench.py --quick    # 4 images, 3 repetitions

The images are what exportImage hands the encoder: 256x256 and 512x512 uint8 blocks read
from real imagery in the shared sample data (``LIVEMOSAIC_SAMPLE_DATA`` or ../shared/data:
Sentinel-2 true colour, a 0.6 m aerial image, a Landsat scene with nodata around it that must
come out transparent), from a tile of bench/make_tiles.py (the mosaic export_bench serves),
and a float32 DEM stretched to 8-bit gray (its float pixels for tiff/lerc/bsq).

For each format, every candidate setting encodes every image N times (``--repeat``), the
candidates taking turns so that a change in machine load hits them alike; a cell is the
median CPU time of one encode (``time.process_time``, one thread) and the size. The first row
of each table is the setting livemosaic used before (Pillow's defaults), the ratios are
against it (geometric mean over the images), and the ``livemosaic`` row is
``RasterEncoder.encode`` itself, with everything it does before writing. Lossy candidates
also print the RMSE of the decoded image against the input over the valid pixels.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lerc
import numpy as np
import numpy.typing as npt
import rasterio
from common import machine_line, table
from make_tiles import TileGrid, tile_pixels
from PIL import Image
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.windows import Window

from livemosaic.adapters.raster import RasterEncoder
from livemosaic.adapters.raster.png import Filter, Strategy, encode_png
from livemosaic.core.models import Extent
from livemosaic.core.ports import ImageFormat, PixelBlock

REPO = Path(__file__).resolve().parent.parent
EXTENT = Extent(0.0, 0.0, 5120.0, 5120.0)
CRS = "EPSG:3857"
ENCODER = RasterEncoder()
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Sample:
    """One image as exportImage hands it to the encoder."""

    name: str
    block: PixelBlock  # uint8 bands (what png/jpg/... get)
    raw: PixelBlock  # the pixels before the stretch (float32 for the DEM), for tiff/lerc/bsq

    @property
    def all_valid(self) -> bool:
        return bool(self.block.valid.all())

    def color(self) -> U8:
        """(rows, cols) gray or (rows, cols, 3) RGB, invalid pixels black."""
        data = self.block.data
        out = np.ascontiguousarray(data[0] if data.shape[0] == 1 else np.moveaxis(data[:3], 0, -1))
        out[~self.block.valid] = 0
        return out

    def alpha(self) -> U8:
        return np.where(self.block.valid, 255, 0).astype(np.uint8)

    def rgba(self) -> U8:
        color = self.color()
        if color.ndim == 2:
            color = np.repeat(color[:, :, None], 3, axis=2)
        return np.dstack([color, self.alpha()])

    def png_pixels(self) -> U8:
        """What format=png writes: alpha only where pixels are invalid."""
        color = self.color()
        if self.all_valid:
            return color
        return np.dstack([color, self.alpha()])


# ---------------------------------------------------------------- the images


def sample_data() -> Path:
    env = os.environ.get("LIVEMOSAIC_SAMPLE_DATA")
    folder = Path(env) if env else REPO.parent / "shared" / "data"
    if not (folder / "imagery").is_dir() or not (folder / "dem").is_dir():
        raise SystemExit(
            f"sample data not found at {folder}: set LIVEMOSAIC_SAMPLE_DATA to the shared data "
            "folder (it holds imagery/ and dem/)"
        )
    return folder


def _read(path: Path, size: int, window: Window | None = None) -> tuple[U8, npt.NDArray[np.bool_]]:
    """Bands and validity of ``window`` (default: all) resampled (nearest) to size x size."""
    with rasterio.open(path) as ds:
        shape = (ds.count, size, size)
        data = ds.read(window=window, out_shape=shape, resampling=Resampling.nearest)
        mask = ds.dataset_mask(window=window, out_shape=(size, size))
    return data, mask > 0


def samples(data: Path, quick: bool) -> list[Sample]:
    out: list[Sample] = []

    def add(name: str, bands: U8, valid: npt.NDArray[np.bool_]) -> None:
        block = PixelBlock(data=np.ascontiguousarray(bands), valid=valid)
        out.append(Sample(name, block, block))

    tile = tile_pixels(TileGrid(cols=1, rows=1), 0, 0, np.random.default_rng(42))
    full = np.ones((512, 512), dtype=bool)
    add("tiles256", tile[:, 100:356, 100:356], full[:256, :256])
    if not quick:
        add("tiles512", tile[:, 256:768, 256:768], full)
    s2 = data / "imagery" / "TCI.tif"
    add("s2-256", *_read(s2, 256, Window(500, 400, 256, 256)))
    if not quick:
        add("s2-512", *_read(s2, 512, Window(300, 300, 512, 512)))
        add("aerial512", *_read(data / "imagery" / "cogeo.tif", 512))
        add("ls-nd256", *_read(data / "imagery" / "RGB.byte.tif", 256))
    add("ls-nd512", *_read(data / "imagery" / "RGB.byte.tif", 512))
    with rasterio.open(data / "dem" / "dem.tif") as ds:
        dem = ds.read(1, out_shape=(512, 512), resampling=Resampling.nearest)
        dem_valid = dem != ds.nodata
    lo, hi = float(dem[dem_valid].min()), float(dem[dem_valid].max())
    gray = np.clip(np.rint((dem - lo) * 255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    out.append(
        Sample(
            "dem512",
            PixelBlock(data=gray[None], valid=dem_valid),
            PixelBlock(data=dem[None].astype(np.float32), valid=dem_valid, nodata=ds.nodata),
        )
    )
    return out


# ---------------------------------------------------------------- candidates


Encode = Callable[[Sample], bytes]


@dataclass(frozen=True, slots=True)
class Candidate:
    label: str
    encode: Encode
    lossy: bool = False


def pillow(pixels: Callable[[Sample], U8], fmt: str, **options: object) -> Encode:
    def run(s: Sample) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(pixels(s)).save(buf, format=fmt, **options)
        return buf.getvalue()

    return run


def numpy_png(pixels: Callable[[Sample], U8], level: int, filt: Filter, strat: Strategy) -> Encode:
    def run(s: Sample) -> bytes:
        return encode_png(pixels(s), level=level, filter=filt, strategy=strat)

    return run


def gdal_png(pixels: Callable[[Sample], U8], level: int) -> Encode:
    def run(s: Sample) -> bytes:
        arr = pixels(s)
        bands = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        profile = {"driver": "PNG", "width": arr.shape[1], "height": arr.shape[0]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not georeferenced
            with MemoryFile() as mem:
                with mem.open(count=bands.shape[0], dtype="uint8", zlevel=level, **profile) as dst:
                    dst.write(bands)
                return bytes(mem.read())

    return run


def shipped(fmt: ImageFormat, raw: bool = False, **kw: object) -> Encode:
    def run(s: Sample) -> bytes:
        block = s.raw if raw else s.block
        return ENCODER.encode(block, fmt, extent=EXTENT, crs=CRS, **kw).content

    return run


def png_candidates(pixels: Callable[[Sample], U8], fmt: ImageFormat) -> list[Candidate]:
    rows = [Candidate("Pillow zlib 6, adaptive (before)", pillow(pixels, "PNG"))]
    rows += [
        Candidate(f"Pillow zlib {lv}, adaptive", pillow(pixels, "PNG", compress_level=lv))
        for lv in (1, 3, 9)
    ]
    rows.append(Candidate("Pillow optimize=True", pillow(pixels, "PNG", optimize=True)))
    rows.append(
        Candidate(
            "Pillow zlib 1, adaptive, RLE", pillow(pixels, "PNG", compress_level=1, compress_type=3)
        )
    )
    for filt in ("none", "sub", "up", "paeth", "adaptive"):
        for lv in (1, 3, 6, 9):
            rows.append(
                Candidate(f"numpy zlib {lv}, {filt}", numpy_png(pixels, lv, filt, "default"))
            )
        rows.append(Candidate(f"numpy zlib 1, {filt}, RLE", numpy_png(pixels, 1, filt, "rle")))
    rows.append(Candidate("numpy zlib 6, up, RLE", numpy_png(pixels, 6, "up", "rle")))
    rows += [Candidate(f"GDAL PNG ZLEVEL={lv}", gdal_png(pixels, lv)) for lv in (1, 6)]
    rows.append(Candidate(f"livemosaic format={fmt}", shipped(fmt)))
    return rows


def _rgb_or_gray(s: Sample) -> U8:
    return s.color()


def _old_png8(s: Sample) -> Image.Image:
    """The png8 quantiser livemosaic used before: exact palette by np.unique, else median cut."""
    rgb = s.color()
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    invalid = ~s.block.valid
    limit = 255 if invalid.any() else 256
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )
    colors, inverse = np.unique(packed[~invalid], return_inverse=True)
    if colors.size > limit:
        return Image.fromarray(rgb).quantize(colors=limit, method=Image.Quantize.MEDIANCUT)
    index = np.zeros(packed.shape, dtype=np.uint8)
    index[~invalid] = inverse.astype(np.uint8)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: colors.size] = np.stack([colors >> 16, colors >> 8, colors], axis=1) & 255
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.ravel().tolist())
    return image


def _quantized(method: Image.Quantize) -> Callable[[Sample], Image.Image]:
    def run(s: Sample) -> Image.Image:
        rgb = s.color()
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        limit = 256 if s.all_valid else 255
        return Image.fromarray(rgb).quantize(colors=limit, method=method)

    return run


def png8_candidates() -> list[Candidate]:
    def with_pillow(quantize: Callable[[Sample], Image.Image]) -> Encode:
        def run(s: Sample) -> bytes:
            buf = io.BytesIO()
            quantize(s).save(buf, format="PNG")
            return buf.getvalue()

        return run

    def with_numpy(
        quantize: Callable[[Sample], Image.Image], level: int, strat: Strategy
    ) -> Encode:
        def run(s: Sample) -> bytes:
            image = quantize(s)
            palette = np.array(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
            index = np.asarray(image, dtype=np.uint8)
            return encode_png(index, level=level, filter="none", strategy=strat, palette=palette)

        return run

    median = _quantized(Image.Quantize.MEDIANCUT)
    octree = _quantized(Image.Quantize.FASTOCTREE)
    rows = [
        Candidate("unique + median cut, Pillow zlib 6 (before)", with_pillow(_old_png8), True),
        Candidate("median cut, Pillow zlib 6", with_pillow(median), True),
        Candidate("fast octree, Pillow zlib 6", with_pillow(octree), True),
        Candidate(
            "max coverage, Pillow zlib 6", with_pillow(_quantized(Image.Quantize.MAXCOVERAGE)), True
        ),
    ]
    for name, q in (("median cut", median), ("fast octree", octree)):
        for lv, strat in ((1, "default"), (3, "default"), (6, "default"), (1, "rle")):
            tag = ", RLE" if strat == "rle" else ""
            rows.append(Candidate(f"{name}, numpy zlib {lv}{tag}", with_numpy(q, lv, strat), True))
    rows.append(Candidate("livemosaic format=png8", shipped("png8"), True))
    return rows


def jpeg_candidates() -> list[Candidate]:
    def jpeg(label: str, **options: object) -> Candidate:
        return Candidate(label, pillow(_rgb_or_gray, "JPEG", **options), True)

    return [
        jpeg("Pillow q75 4:2:0 (before)", quality=75),
        jpeg("Pillow q75 4:4:4", quality=75, subsampling=0),
        jpeg("Pillow q75 4:2:0, optimize", quality=75, subsampling=2, optimize=True),
        jpeg("Pillow q75 4:2:0, progressive", quality=75, subsampling=2, progressive=True),
        jpeg("Pillow q85 4:2:0", quality=85, subsampling=2),
        jpeg("Pillow q90 4:2:0", quality=90, subsampling=2),
        jpeg("Pillow q90 4:4:4", quality=90, subsampling=0),
        Candidate("livemosaic format=jpg", shipped("jpg"), True),
    ]


def lerc_candidates() -> list[Candidate]:
    def raw_lerc(max_err: float) -> Encode:
        def run(s: Sample) -> bytes:
            data = np.ascontiguousarray(s.raw.data)
            mask = np.ascontiguousarray(s.raw.valid.astype(np.uint8))
            arr = data[0] if data.shape[0] == 1 else data
            err = max(max_err, 0.5) if np.issubdtype(data.dtype, np.integer) else max_err
            result = lerc.encode(arr, 1, True, mask, err, data.nbytes + mask.nbytes + 4096)
            return bytes(result[2][: result[1]])

        return run

    rows = [Candidate("lossless (before)", raw_lerc(0.0))]
    rows += [Candidate(f"compressionTolerance={t}", raw_lerc(t), True) for t in (0.01, 0.1, 1.0)]
    rows.append(Candidate("livemosaic format=lerc", shipped("lerc", raw=True)))
    return rows


def every_format() -> list[Candidate]:
    rows: list[Candidate] = []
    for fmt in ("png", "png24", "png32", "png8", "jpg", "jpgpng", "gif", "bmp"):
        rows.append(Candidate(fmt, shipped(fmt), fmt in ("png8", "jpg", "jpgpng", "gif")))
    for fmt in ("tiff", "lerc", "bsq"):
        rows.append(Candidate(f"{fmt} (DEM: float32)", shipped(fmt, raw=True)))
    return rows


# ---------------------------------------------------------------- measuring


def rmse(content: bytes, s: Sample) -> float:
    """RMSE of the decoded image over the valid pixels (LERC: the largest error)."""
    if content.startswith(b"Lerc2 "):
        decoded = np.asarray(lerc.decode(content)[1], dtype=np.float64)
        raw = s.raw.data.astype(np.float64)
        return float(np.abs(decoded.reshape(raw.shape) - raw)[:, s.raw.valid].max())
    decoded = np.asarray(Image.open(io.BytesIO(content)).convert("RGB"), dtype=np.float64)
    color = s.color().astype(np.float64)
    if color.ndim == 2:
        color = np.repeat(color[:, :, None], 3, axis=2)
    diff = (decoded - color)[s.block.valid]
    return math.sqrt(float(np.mean(diff**2))) if diff.size else 0.0


@dataclass
class Cell:
    ms: float
    size: int
    error: float | None


def measure(cands: list[Candidate], images: list[Sample], repeat: int) -> list[list[Cell]]:
    """cells[candidate][image]: median CPU ms over ``repeat`` turns, bytes, RMSE if lossy."""
    times = [[[] for _ in images] for _ in cands]  # type: list[list[list[float]]]
    sizes = [[0] * len(images) for _ in cands]
    errors: list[list[float | None]] = [[None] * len(images) for _ in cands]
    for ci, cand in enumerate(cands):  # warm-up, sizes and errors
        for ii, img in enumerate(images):
            content = cand.encode(img)
            sizes[ci][ii] = len(content)
            if cand.lossy:
                errors[ci][ii] = rmse(content, img)
    for _ in range(repeat):
        for ii, img in enumerate(images):
            for ci, cand in enumerate(cands):
                start = time.process_time()
                cand.encode(img)
                times[ci][ii].append(time.process_time() - start)
    return [
        [
            Cell(statistics.median(times[ci][ii]) * 1000.0, sizes[ci][ii], errors[ci][ii])
            for ii in range(len(images))
        ]
        for ci in range(len(cands))
    ]


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(max(v, 1e-9)) for v in values))


def report(title: str, cands: list[Candidate], images: list[Sample], repeat: int) -> None:
    cells = measure(cands, images, repeat)
    base = cells[0]
    lossy = any(c.lossy for c in cands)
    header = ["candidate", *[i.name for i in images], "ms x", "bytes x"]
    rows = []
    for cand, row in zip(cands, cells, strict=True):
        texts = []
        for cell in row:
            text = f"{cell.ms:.1f}/{cell.size / 1024:.0f}"
            if lossy:
                text += "/" + ("-" if cell.error is None else f"{cell.error:.1f}")
            texts.append(text)
        ms_ratio = geomean([c.ms / b.ms for c, b in zip(row, base, strict=True)])
        size_ratio = geomean([c.size / b.size for c, b in zip(row, base, strict=True)])
        rows.append([cand.label, *texts, f"{ms_ratio:.2f}", f"{size_ratio:.2f}"])
    unit = "CPU ms / KB" + (" / RMSE (LERC: max error)" if lossy else "")
    print(f"\n## {title}  (cells: {unit}; ratios against the first row, geometric mean)")
    print(table(header, rows))
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="encodes per cell (median)")
    parser.add_argument("--quick", action="store_true", help="4 images, 3 repetitions")
    parser.add_argument(
        "--only",
        default="png,png32,png8,jpg,lerc,formats",
        help="comma list of tables: png, png32, png8, jpg, lerc, formats",
    )
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    started = time.perf_counter()
    print(machine_line())
    images = samples(sample_data(), args.quick)
    print(
        "images: "
        + ", ".join(
            f"{s.name} ({s.block.data.shape[0]} band{'s' if s.block.data.shape[0] > 1 else ''}, "
            f"{100.0 * (1 - s.block.valid.mean()):.0f}% nodata)"
            for s in images
        )
    )
    print(f"each cell: median of {repeat} encodes, time.process_time, one thread")
    only = set(args.only.split(","))
    if "png" in only:
        report(
            "format=png (RGB or gray; RGBA where nodata)",
            png_candidates(Sample.png_pixels, "png"),
            images,
            repeat,
        )
    if "png32" in only:
        report("format=png32 (always RGBA)", png_candidates(Sample.rgba, "png32"), images, repeat)
    if "png8" in only:
        report("format=png8 (palette; quantise, then write)", png8_candidates(), images, repeat)
    if "jpg" in only:
        report(
            "format=jpg (quality comes from the request; 75 is the default)",
            jpeg_candidates(),
            images,
            repeat,
        )
    if "lerc" in only:
        report(
            "format=lerc (DEM: float32; tolerance comes from the request)",
            lerc_candidates(),
            images,
            repeat,
        )
    if "formats" in only:
        report(
            "every format as livemosaic writes it (ratios against png)",
            every_format(),
            images,
            repeat,
        )
    print(f"\n{machine_line()}; took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
