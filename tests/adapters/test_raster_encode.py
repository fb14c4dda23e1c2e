"""RasterEncoder: magic bytes and round trips for every exportImage format."""

from __future__ import annotations

import io
import math

import lerc
import numpy as np
import pytest
import rasterio
from PIL import Image

from livemosaic.adapters.raster import RasterEncoder
from livemosaic.adapters.raster.encode import pick_nodata
from livemosaic.core.models import Extent
from livemosaic.core.ports import ImageFormat, PixelBlock

ENCODER = RasterEncoder()
EXTENT = Extent(500000.0, 4000000.0, 500300.0, 4000200.0)
CRS = "EPSG:32632"
MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "png8": b"\x89PNG\r\n\x1a\n",
    "png24": b"\x89PNG\r\n\x1a\n",
    "png32": b"\x89PNG\r\n\x1a\n",
    "jpg": b"\xff\xd8",
    "bmp": b"BM",
    "gif": b"GIF",
    "tiff": b"II*\x00",
    "lerc": b"Lerc2 ",
}


def rgb_block(*, holes: bool = True, seed: int = 0) -> PixelBlock:
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 256, (3, 20, 30), dtype=np.uint8)
    valid = np.ones((20, 30), dtype=bool)
    if holes:
        valid[:4, :6] = False
    return PixelBlock(data=data, valid=valid, band_names=("Red", "Green", "Blue"))


def encode(block: PixelBlock, fmt: ImageFormat, **kw: object) -> bytes:
    result = ENCODER.encode(block, fmt, extent=EXTENT, crs=CRS, **kw)  # type: ignore[arg-type]
    return result.content


def image(content: bytes) -> Image.Image:
    return Image.open(io.BytesIO(content))


@pytest.mark.parametrize("fmt", list(MAGIC))
def test_magic_bytes_and_content_type(fmt: ImageFormat) -> None:
    result = ENCODER.encode(rgb_block(), fmt, extent=EXTENT, crs=CRS)
    assert result.content.startswith(MAGIC[fmt])
    expected_type = {
        "jpg": "image/jpeg",
        "bmp": "image/bmp",
        "gif": "image/gif",
        "tiff": "image/tiff",
        "lerc": "application/octet-stream",
    }.get(fmt, "image/png")
    assert result.content_type == expected_type


def test_png32_alpha_from_valid() -> None:
    block = rgb_block()
    img = image(encode(block, "png32"))
    assert img.mode == "RGBA"
    arr = np.array(img)
    assert np.array_equal(arr[..., 3] > 0, block.valid)
    assert np.array_equal(arr[block.valid][:, :3], np.moveaxis(block.data, 0, -1)[block.valid])


def test_png_alpha_only_when_needed() -> None:
    assert image(encode(rgb_block(holes=False), "png")).mode == "RGB"
    assert image(encode(rgb_block(), "png")).mode == "RGBA"
    gray = PixelBlock(data=rgb_block().data[:1], valid=rgb_block().valid)
    assert image(encode(gray, "png")).mode == "LA"


def test_png24_has_no_alpha() -> None:
    block = rgb_block()
    arr = np.array(image(encode(block, "png24")))
    assert arr.shape == (20, 30, 3)
    assert (arr[~block.valid] == 0).all()


def test_png8_palette_with_transparent_index() -> None:
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    idx = rng.integers(0, 40, (20, 30))
    data = np.moveaxis(palette[idx], -1, 0)
    valid = np.ones((20, 30), dtype=bool)
    valid[5:8, :] = False
    img = image(encode(PixelBlock(data=data, valid=valid), "png8"))
    assert img.mode == "P"
    assert img.info.get("transparency") == 255
    index = np.array(img)
    assert (index[~valid] == 255).all()
    rgb = np.array(img.convert("RGB"))
    assert np.array_equal(rgb[valid], np.moveaxis(data, 0, -1)[valid])  # exact: 40 colours


def test_png8_quantizes_many_colours() -> None:
    img = image(encode(rgb_block(), "png8"))
    assert img.mode == "P"
    assert len(np.unique(np.array(img))) <= 256


def test_jpg_quality_and_gray() -> None:
    smooth = np.tile(np.linspace(0, 255, 30, dtype=np.uint8), (3, 20, 1))
    block = PixelBlock(data=smooth, valid=np.ones((20, 30), dtype=bool))
    low = encode(block, "jpg", quality=10)
    high = encode(block, "jpg", quality=95)
    assert len(low) < len(high)
    decoded = np.array(image(high)).astype(int)
    assert np.abs(decoded - np.moveaxis(smooth, 0, -1)).max() <= 8
    gray = PixelBlock(data=smooth[:1], valid=block.valid)
    assert image(encode(gray, "jpg")).mode == "L"


def test_jpgpng_switches_on_transparency() -> None:
    assert (
        ENCODER.encode(rgb_block(holes=False), "jpgpng", extent=EXTENT, crs=CRS).extension == "jpg"
    )
    result = ENCODER.encode(rgb_block(), "jpgpng", extent=EXTENT, crs=CRS)
    assert result.extension == "png" and image(result.content).mode == "RGBA"


def test_two_bands_use_the_first_as_gray() -> None:
    block = PixelBlock(data=rgb_block().data[:2], valid=np.ones((20, 30), dtype=bool))
    arr = np.array(image(encode(block, "png")))
    assert arr.ndim == 2 and np.array_equal(arr, block.data[0])


def test_non_byte_data_is_clipped() -> None:
    data = np.array([[[-5.0, 300.0, np.nan, 42.4]]], dtype=np.float32)
    block = PixelBlock(data=data, valid=np.ones((1, 4), dtype=bool))
    assert np.array(image(encode(block, "png"))).tolist() == [[0, 255, 0, 42]]


def test_bmp_and_gif_round_trip() -> None:
    block = rgb_block(holes=False)
    bmp = np.array(image(encode(block, "bmp")))
    assert np.array_equal(bmp, np.moveaxis(block.data, 0, -1))
    holed = rgb_block()
    gif = image(encode(holed, "gif"))
    assert gif.format == "GIF"
    index = np.array(gif)
    transparent = gif.info["transparency"]
    assert (index[~holed.valid] == transparent).all()
    assert (index[holed.valid] != transparent).all()


def test_tiff_is_georeferenced_with_nodata() -> None:
    data = np.arange(600, dtype=np.int16).reshape(1, 20, 30) - 300
    valid = np.ones((20, 30), dtype=bool)
    valid[0, 0] = False
    block = PixelBlock(data=data, valid=valid, band_names=("elev",), nodata=-9999.0)
    with rasterio.MemoryFile(encode(block, "tiff")) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 32632
        assert ds.bounds == pytest.approx((500000.0, 4000000.0, 500300.0, 4000200.0))
        assert ds.dtypes[0] == "int16" and ds.nodata == -9999
        out = ds.read(1)
        assert out[0, 0] == -9999 and np.array_equal(out[valid], data[0][valid])
        assert ds.descriptions == ("elev",)


def test_tiff_picks_a_nodata_value_or_writes_a_mask() -> None:
    floats = PixelBlock(
        data=np.ones((2, 20, 30), dtype=np.float32), valid=rgb_block().valid, nodata=None
    )
    with rasterio.MemoryFile(encode(floats, "tiff")) as mem, mem.open() as ds:
        assert ds.count == 2 and math.isnan(ds.nodata)
        assert np.isnan(ds.read(1)[~floats.valid]).all()
    block = rgb_block()  # values 1..255 are used, 0 is free
    with rasterio.MemoryFile(encode(block, "tiff")) as mem, mem.open() as ds:
        assert ds.nodata == 0
        assert np.array_equal(ds.dataset_mask() > 0, block.valid)
    full = np.tile(np.arange(256, dtype=np.uint8), (1, 2, 1))[:, :, :256]
    valid = np.ones((2, 256), dtype=bool)
    valid[0, 0] = False
    full[0, 0, 0] = 7
    block = PixelBlock(data=full, valid=valid)
    assert pick_nodata(full, valid) is None
    with (
        rasterio.MemoryFile(
            ENCODER.encode(block, "tiff", extent=Extent(0, 0, 256, 2), crs="EPSG:4326").content
        ) as mem,
        mem.open() as ds,
    ):
        assert ds.nodata is None
        assert np.array_equal(ds.dataset_mask() > 0, valid)


def test_lerc_round_trip_with_mask() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(100, 10, (2, 20, 30)).astype(np.float32)
    valid = np.ones((20, 30), dtype=bool)
    valid[10:, 20:] = False
    content = encode(PixelBlock(data=data, valid=valid), "lerc", lerc_tolerance=0.0)
    result, decoded, mask = lerc.decode(content)[:3]
    assert result == 0
    assert np.array_equal(mask.astype(bool), valid)
    assert np.array_equal(decoded[:, valid], data[:, valid])
    lossy = encode(PixelBlock(data=data, valid=valid), "lerc", lerc_tolerance=0.5)
    assert len(lossy) < len(content)
    assert np.abs(lerc.decode(lossy)[1][:, valid] - data[:, valid]).max() <= 0.5 + 1e-4


def test_lerc_single_band_integers() -> None:
    data = np.arange(600, dtype=np.uint16).reshape(1, 20, 30)
    content = encode(PixelBlock(data=data, valid=np.ones((20, 30), dtype=bool)), "lerc")
    result, decoded, _ = lerc.decode(content)[:3]
    assert result == 0 and np.array_equal(decoded, data[0])


def test_raw_bip_and_bsq() -> None:
    data = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    block = PixelBlock(data=data, valid=np.ones((3, 4), dtype=bool))
    bsq = np.frombuffer(encode(block, "bsq"), dtype="<u2").reshape(2, 3, 4)
    bip = np.frombuffer(encode(block, "bip"), dtype="<u2").reshape(3, 4, 2)
    assert np.array_equal(bsq, data)
    assert np.array_equal(np.moveaxis(bip, -1, 0), data)


def test_lerc_1_encoding_stays_within_its_memory_estimate() -> None:
    """The budget's LERC 1 stage covers what the encoder allocates (tracemalloc peak), for the
    pixel type where float32 output costs most against the input (uint8, 3 bands)."""
    import tracemalloc

    from livemosaic.adapters.raster import lerc1
    from livemosaic.core.budget import ExportShape, stage_bytes

    rows, cols = 300, 400
    data = np.random.default_rng(3).integers(0, 255, (3, rows, cols), dtype=np.uint8)
    valid = np.ones((rows, cols), dtype=bool)
    valid[:50] = False
    estimate = ExportShape(rows, cols, 3, np.dtype(np.uint8), "First", 3, None,
                           format="lerc", lerc_version=1)  # fmt: skip
    per_pixel = stage_bytes(estimate)["encode"] - 3  # minus the finished block itself
    tracemalloc.start()
    try:
        blob = lerc1.encode(data, valid)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.count(b"CntZImage ") == 3
    assert peak <= per_pixel * rows * cols, (peak, per_pixel * rows * cols)
