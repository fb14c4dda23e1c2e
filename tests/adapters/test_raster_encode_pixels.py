"""Every format's output decoded again: lossless formats give back exactly the input pixels,
and transparency (or the mask) is exactly where the nodata is. Real imagery from the sample
data, decoded by Pillow and by GDAL."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import lerc
import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from PIL import Image
from rasterio.enums import Resampling
from rasterio.windows import Window

from livemosaic.adapters.raster import RasterEncoder
from livemosaic.adapters.raster.png import Filter, Strategy, encode_png
from livemosaic.core.models import Extent
from livemosaic.core.ports import ImageFormat, PixelBlock

ENCODER = RasterEncoder()
EXTENT = Extent(0.0, 0.0, 2560.0, 2560.0)
CRS = "EPSG:3857"
U8 = npt.NDArray[np.uint8]


def encode(block: PixelBlock, fmt: ImageFormat, **kw: object) -> bytes:
    return ENCODER.encode(block, fmt, extent=EXTENT, crs=CRS, **kw).content  # type: ignore[arg-type]


def pillow(content: bytes) -> Image.Image:
    return Image.open(io.BytesIO(content))


def gdal(content: bytes) -> npt.NDArray[np.uint8]:
    """(bands, rows, cols) as GDAL's PNG/GTiff drivers read the bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a PNG has no georeferencing
        with rasterio.MemoryFile(content) as mem, mem.open() as ds:
            return np.asarray(ds.read(), dtype=np.uint8)


@pytest.fixture(scope="module")
def landsat(shared_data: Path) -> PixelBlock:
    """A 256x256 RGB mosaic of a Landsat scene: a third of it is nodata (the collar)."""
    with rasterio.open(shared_data / "imagery" / "RGB.byte.tif") as ds:
        data = ds.read(out_shape=(3, 256, 256), resampling=Resampling.nearest)
        valid = ds.dataset_mask(out_shape=(256, 256)) > 0
    assert 0.2 < (~valid).mean() < 0.5
    return PixelBlock(data=data, valid=valid)


@pytest.fixture(scope="module")
def full(shared_data: Path) -> PixelBlock:
    """96x128 pixels of Sentinel-2 true colour at native resolution, every one valid."""
    window = Window(500, 400, 128, 96)
    with rasterio.open(shared_data / "imagery" / "TCI.tif") as ds:
        data = ds.read(window=window)
        assert (ds.dataset_mask(window=window) > 0).all()
    return PixelBlock(data=data, valid=np.ones(data.shape[1:], dtype=bool))


@pytest.fixture(scope="module")
def dem(shared_data: Path) -> PixelBlock:
    """A float32 DEM stretched to 8-bit gray, with a rectangle of nodata."""
    with rasterio.open(shared_data / "dem" / "dem.tif") as ds:
        heights = ds.read(1, out_shape=(200, 240))
    gray = np.rint((heights - heights.min()) * 255.0 / np.ptp(heights)).astype(np.uint8)
    valid = np.ones(gray.shape, dtype=bool)
    valid[20:60, 100:180] = False
    return PixelBlock(data=gray[None], valid=valid)


def hwc(block: PixelBlock) -> U8:
    return np.moveaxis(block.data, 0, -1)


@pytest.mark.parametrize("fmt", ["png", "png24", "png32", "bmp"])
def test_lossless_8_bit_formats_give_back_every_pixel(full: PixelBlock, fmt: ImageFormat) -> None:
    content = encode(full, fmt)
    decoded = np.array(pillow(content).convert("RGB"))
    assert np.array_equal(decoded, hwc(full))
    if fmt != "bmp":
        assert np.array_equal(np.moveaxis(gdal(content)[:3], 0, -1), hwc(full))


def test_png_is_rgb_without_nodata_and_rgba_with_it(full: PixelBlock, landsat: PixelBlock) -> None:
    assert pillow(encode(full, "png")).mode == "RGB"
    assert pillow(encode(full, "png24")).mode == "RGB"
    assert pillow(encode(full, "png32")).mode == "RGBA"
    assert np.array(pillow(encode(full, "png32")))[..., 3].min() == 255
    for fmt in ("png", "png32"):
        content = encode(landsat, fmt)
        rgba = np.array(pillow(content))
        assert rgba.shape == (256, 256, 4)
        assert np.array_equal(rgba[..., 3] == 255, landsat.valid)
        assert (rgba[..., 3][~landsat.valid] == 0).all()
        assert np.array_equal(rgba[..., :3][landsat.valid], hwc(landsat)[landsat.valid])
        assert np.array_equal(gdal(content)[3] > 0, landsat.valid)
    png24 = np.array(pillow(encode(landsat, "png24")))
    assert png24.shape == (256, 256, 3)
    assert np.array_equal(png24[landsat.valid], hwc(landsat)[landsat.valid])
    assert (png24[~landsat.valid] == 0).all()


def test_gray_png_formats_keep_every_level(dem: PixelBlock) -> None:
    gray = dem.data[0]
    la = np.array(pillow(encode(dem, "png")))  # gray + alpha
    assert la.shape == (*gray.shape, 2)
    assert np.array_equal(la[..., 0][dem.valid], gray[dem.valid])
    assert np.array_equal(la[..., 1] == 255, dem.valid)
    for fmt, channels in (("png24", 3), ("png32", 4)):
        arr = np.array(pillow(encode(dem, fmt)))
        assert arr.shape == (*gray.shape, channels)
        for band in range(3):
            assert np.array_equal(arr[..., band][dem.valid], gray[dem.valid])
    assert np.array_equal(np.array(pillow(encode(dem, "png32")))[..., 3] == 255, dem.valid)
    everywhere = PixelBlock(data=dem.data, valid=np.ones(gray.shape, dtype=bool))
    assert np.array_equal(np.array(pillow(encode(everywhere, "png"))), gray)


def test_png8_and_gif_keep_gray_levels_with_nodata_transparent(dem: PixelBlock) -> None:
    gray = dem.data[0]
    assert np.unique(gray[dem.valid]).size == 256  # no room left for the transparent index
    fewer = PixelBlock(data=dem.data // 2 + 60, valid=dem.valid)  # 128 levels
    for fmt in ("png8", "gif"):
        for block, exact in ((fewer, True), (dem, False)):
            img = pillow(encode(block, fmt))
            index = np.array(img)
            transparent = img.info["transparency"]
            assert np.array_equal(index == transparent, ~block.valid)
            rgb = np.array(img.convert("RGB")).astype(np.int16)
            expected = block.data[0][block.valid].astype(np.int16)
            for band in range(3):
                diff = rgb[..., band][block.valid] - expected
                if exact:
                    assert not diff.any(), fmt
                else:  # the least used level joined a neighbour; every other pixel is exact
                    assert np.abs(diff).max() == 1, fmt
                    assert np.unique(expected[diff != 0]).size == 1


def test_png8_of_few_colours_is_exact(full: PixelBlock) -> None:
    rgb = hwc(full) // 64 * 64  # at most 64 colours
    block = PixelBlock(data=np.ascontiguousarray(np.moveaxis(rgb, -1, 0)), valid=full.valid)
    img = pillow(encode(block, "png8"))
    assert img.mode == "P" and "transparency" not in img.info
    assert np.array_equal(np.array(img.convert("RGB")), rgb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a PNG has no georeferencing
        with rasterio.MemoryFile(encode(block, "png8")) as mem, mem.open() as ds:
            colormap = ds.colormap(1)
            index = ds.read(1)
    lut = np.array([colormap.get(i, (0, 0, 0, 0))[:3] for i in range(256)], dtype=np.uint8)
    assert np.array_equal(lut[index], rgb)  # GDAL reads the palette alike


def test_png8_of_imagery_is_close_with_nodata_transparent(landsat: PixelBlock) -> None:
    img = pillow(encode(landsat, "png8"))
    index = np.array(img)
    assert img.mode == "P" and img.info["transparency"] == 255
    assert np.array_equal(index == 255, ~landsat.valid)
    rgb = np.array(img.convert("RGB")).astype(np.float64)
    error = rgb[landsat.valid] - hwc(landsat)[landsat.valid]
    assert float(np.sqrt(np.mean(error**2))) < 8.0  # quantised: close, not exact


def test_jpeg_huffman_optimisation_leaves_the_pixels_as_they_were(full: PixelBlock) -> None:
    ours = encode(full, "jpg", quality=75)
    plain = io.BytesIO()
    Image.fromarray(hwc(full)).save(plain, format="JPEG", quality=75)
    assert np.array_equal(np.array(pillow(ours)), np.array(pillow(plain.getvalue())))
    assert len(ours) <= len(plain.getvalue())


def test_tiff_lerc_and_raw_give_back_every_pixel(landsat: PixelBlock, shared_data: Path) -> None:
    with rasterio.open(shared_data / "dem" / "dem.tif") as ds:
        heights = ds.read(1, out_shape=(120, 100))
    valid = np.ones(heights.shape, dtype=bool)
    valid[:10, :30] = False
    floats = PixelBlock(data=heights[None].astype(np.float32), valid=valid, nodata=-9999.0)
    for block in (landsat, floats):
        with rasterio.MemoryFile(encode(block, "tiff")) as mem, mem.open() as ds:
            assert np.array_equal(ds.read()[:, block.valid], block.data[:, block.valid])
            assert np.array_equal(ds.dataset_mask() > 0, block.valid)
        result, decoded, mask = lerc.decode(encode(block, "lerc", lerc_tolerance=0.0))[:3]
        assert result == 0 and np.array_equal(mask.astype(bool), block.valid)
        decoded = np.asarray(decoded).reshape(block.data.shape)
        assert np.array_equal(decoded[:, block.valid], block.data[:, block.valid])
        bsq = np.frombuffer(encode(block, "bsq"), dtype=block.data.dtype.newbyteorder("<"))
        assert np.array_equal(bsq.reshape(block.data.shape), block.data)


SHAPES = [(1, 1), (7, 5), (33, 17, 1), (33, 17, 2), (33, 17, 3), (31, 40, 4)]
FILTERS: list[Filter] = ["none", "sub", "up", "paeth", "adaptive"]
STRATEGIES: list[Strategy] = ["default", "filtered", "rle"]


@pytest.mark.parametrize("filt", FILTERS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_png_writer_round_trips_every_filter_and_strategy(filt: Filter, strategy: Strategy) -> None:
    rng = np.random.default_rng(7)
    for shape in SHAPES:
        noise = rng.integers(0, 256, shape, dtype=np.uint8)
        smooth = np.cumsum(rng.integers(0, 3, shape, dtype=np.uint8), axis=1, dtype=np.uint8)
        for pixels in (noise, smooth):
            content = encode_png(pixels, level=3, filter=filt, strategy=strategy)
            decoded = np.array(pillow(content))
            expected = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
            assert np.array_equal(decoded, expected), shape
            by_gdal = gdal(content)
            assert np.array_equal(
                by_gdal, expected[None] if expected.ndim == 2 else np.moveaxis(expected, -1, 0)
            )


def test_png_writer_palette_and_transparent_index() -> None:
    rng = np.random.default_rng(8)
    palette = rng.integers(0, 256, (12, 3), dtype=np.uint8)
    index = rng.integers(0, 12, (25, 19), dtype=np.uint8)
    content = encode_png(
        index, level=6, filter="none", strategy="default", palette=palette, transparent_index=11
    )
    img = pillow(content)
    assert img.mode == "P" and np.array_equal(np.array(img), index)
    rgba = np.array(img.convert("RGBA"))
    assert np.array_equal(rgba[..., :3], palette[index])
    assert np.array_equal(rgba[..., 3] == 0, index == 11)
    with pytest.raises(ValueError):
        encode_png(index.astype(np.uint16), level=1, filter="up", strategy="rle")  # type: ignore[arg-type]
