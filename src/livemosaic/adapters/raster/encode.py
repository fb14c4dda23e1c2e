"""Encoding pixel blocks in the exportImage formats (spec 6.1.2).

8-bit formats (png*, jpg, bmp, gif) take 1 band as gray, 2 bands as the first band's gray
and 3 or more as RGB from the first three; data that is not uint8 is clipped to 0..255
(NaN -> 0) as a safeguard — stretching is the caller's job. Invalid pixels become
transparent where the format has alpha (png, png32, png8, gif) and black otherwise.

``tiff`` is a GeoTIFF (deflate) with every band in the block's dtype, georeferenced with the
extent and CRS; invalid pixels hold the nodata value written in the nodata tag. Without a
nodata value, one the valid pixels do not use is picked (NaN for float data); when every value
of the type is in use an internal mask is written instead. ``lerc`` is a LERC 2 blob with the
valid mask (pylerc), or with ``lercVersion=1`` a LERC 1 blob per band (``lerc1``: lossless
float32, which that library cannot write); ``bip``/``bsq`` are raw little-endian pixels, band-interleaved by pixel
or band-sequential.
"""

from __future__ import annotations

import io
import math
from typing import Any

import lerc
import numpy as np
import numpy.typing as npt
from affine import Affine
from PIL import Image
from rasterio.io import MemoryFile

from livemosaic.adapters.raster import lerc1
from livemosaic.adapters.raster.crs import crs_from_key, quiet_env
from livemosaic.adapters.raster.png import Filter, Strategy, encode_png
from livemosaic.core.models import Extent
from livemosaic.core.ports import EncodedImage, ImageFormat, PixelBlock, TiffCompression
from livemosaic.errors import InvalidParameter, NotSupported

PNG = ("image/png", "png")
JPEG = ("image/jpeg", "jpg")
OCTETS = "application/octet-stream"

U8Array = npt.NDArray[np.uint8]

# Encoder settings, chosen from bench/encode_bench.py (figures in docs/performance.md).
# PNG: the Up filter and zlib's run-length strategy write the images exportImage makes in
# 0.15x the CPU of Pillow's defaults (zlib 6, a filter tried per row) for 1.03x the bytes
# (worst case 1.12x, an aerial image with a JPEG-compressed source). With that strategy the
# zlib level changes neither time nor size; the slowest settings (zlib 9, Pillow's optimize)
# save 2 % for 18x the CPU. Not a setting: a user who needs small images saves far more by
# asking for jpg (0.1x the bytes) or png8 (0.3x).
PNG_FILTER: Filter = "up"
PNG_STRATEGY: Strategy = "rle"
PNG_LEVEL = 1
# One gray band copied into R, G, B (png24/png32 of a single band): the repeats are 1-3 bytes
# apart, which run-length coding cannot see (1.9x the bytes); zlib 2 finds them (1.4x) at
# 0.2x the CPU.
PNG_GRAY_AS_RGB_STRATEGY: Strategy = "default"
PNG_GRAY_AS_RGB_LEVEL = 2
# png8 (and gif): more than 256 colours are reduced by Pillow's fast octree, 0.05x the CPU of
# median cut, 0.6x the bytes, RMSE 1-1.5 levels higher; up to 256 colours keep an exact
# palette. Palette indexes are written unfiltered (PNG's advice) at zlib 3: half the CPU of
# zlib 6 for 1.0-1.07x the bytes. Gray levels in ascending order are the exception: filtered
# like png they are 0.6x the bytes in 0.15x the time.
PALETTE_QUANTIZE = Image.Quantize.FASTOCTREE
PALETTE_PNG_LEVEL = 3
# JPEG: libjpeg's optimised Huffman tables make the file 0.91x for 0.1-1.4 ms more at
# 512x512, the same pixels; chroma subsampling stays 4:2:0 (4:4:4 is 1.23x the bytes).
# The quality comes from the request.
JPEG_OPTIMIZE = True
# GeoTIFF: deflate at level 1 (GDAL's libdeflate). On bench/encode_bench.py's images (8-bit
# imagery, a float32 DEM) the whole tiff encode takes 0.6-0.8x the CPU of GDAL's default
# level 6 for 0.99-1.07x the bytes (geometric mean 1.02x; the aerial image 1.07x): pixel
# values hold few of the long repeats the higher levels look for. GDAL's default strips
# (8 KB) were faster than 32 KB or 64 KB ones.
TIFF_DEFLATE_LEVEL = 1


class RasterEncoder:
    """Implements ``core.ports.ImageEncoder`` with Pillow, rasterio and pylerc."""

    def encode(
        self,
        block: PixelBlock,
        fmt: ImageFormat,
        *,
        extent: Extent,
        crs: str,
        quality: int = 75,
        lerc_tolerance: float = 0.0,
        lerc_version: int = 2,
        compression: TiffCompression = "None",
    ) -> EncodedImage:
        """Bytes of ``block`` in ``fmt``; 8-bit formats expect uint8 data; ``compression``
        applies to TIFF."""
        if block.data.ndim != 3 or block.data.shape[0] == 0:
            raise InvalidParameter("bandIds", "the image has no bands to encode.")
        all_valid = bool(block.valid.all())
        if fmt == "jpgpng":
            fmt = "jpg" if all_valid else "png"
        if fmt in ("png", "png32", "png24"):
            return _png(block, fmt, all_valid)
        if fmt == "png8":
            return EncodedImage(_palette_png(*_paletted(block)), *PNG)
        if fmt == "jpg":
            image = Image.fromarray(_color(block, paint=True))
            q = max(1, min(100, int(quality)))
            return EncodedImage(_save(image, "JPEG", quality=q, optimize=JPEG_OPTIMIZE), *JPEG)
        if fmt == "bmp":
            return EncodedImage(
                _save(Image.fromarray(_color(block, paint=True)), "BMP"), "image/bmp", "bmp"
            )
        if fmt == "gif":
            return EncodedImage(_save(_paletted(block)[0], "GIF"), "image/gif", "gif")
        if fmt == "tiff":
            tiff = _geotiff(block, extent, crs, _tiff_options(block, compression, quality,
                                                              lerc_tolerance))  # fmt: skip
            return EncodedImage(tiff, "image/tiff", "tif")
        if fmt == "lerc":
            if lerc_version == 1:  # CntZImage, written here (the LERC library cannot)
                return EncodedImage(lerc1.encode(block.data, block.valid), OCTETS, "lerc")
            return EncodedImage(_lerc(block, lerc_tolerance), OCTETS, "lerc")
        if fmt == "bip":
            data = np.ascontiguousarray(np.moveaxis(block.data, 0, -1))
            return EncodedImage(_little_endian(data).tobytes(), OCTETS, "bip")
        if fmt == "bsq":
            return EncodedImage(_little_endian(block.data).tobytes(), OCTETS, "bsq")
        raise NotSupported(f"Image format '{fmt}' is not supported.")


def to_uint8(data: npt.NDArray[Any]) -> U8Array:
    """uint8 copy of data that should already be 8-bit (clipped; NaN -> 0)."""
    if data.dtype == np.uint8:
        return np.asarray(data, dtype=np.uint8)
    values = np.nan_to_num(data.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _color(block: PixelBlock, *, paint: bool) -> U8Array:
    """(rows, cols) gray or (rows, cols, 3) RGB uint8; invalid pixels black when ``paint``."""
    data = to_uint8(block.data[:3] if block.data.shape[0] >= 3 else block.data[:1])
    if data.shape[0] == 1:
        out = np.ascontiguousarray(data[0])
    else:  # band by band: 4x faster than a contiguous copy of the moved axes
        out = np.empty((*data.shape[1:], 3), dtype=np.uint8)
        for i in range(3):
            out[:, :, i] = data[i]
    if paint and not bool(block.valid.all()):
        out[~block.valid] = 0
    return out


def _png(block: PixelBlock, fmt: str, all_valid: bool) -> EncodedImage:
    """png: gray or RGB, plus alpha only where pixels are invalid; png24 RGB; png32 RGBA."""
    color = _color(block, paint=True)
    gray_as_rgb = color.ndim == 2 and fmt in ("png24", "png32")
    alpha = fmt == "png32" or (fmt == "png" and not all_valid)
    channels = (4 if alpha else 3) if gray_as_rgb or color.ndim == 3 else (2 if alpha else 1)
    if channels == (1 if color.ndim == 2 else 3):
        pixels = color  # no channel to add: no copy
    else:
        pixels = np.empty((*color.shape[:2], channels), dtype=np.uint8)
        if color.ndim == 2:
            pixels[:, :, : channels - alpha] = color[:, :, None]
        else:
            pixels[:, :, :3] = color
    if alpha:  # 0 or 255, computed in uint8 (no wider temporary array)
        np.multiply(block.valid.view(np.uint8), 255, out=pixels[:, :, -1], dtype=np.uint8)
    if gray_as_rgb:
        level, strategy = PNG_GRAY_AS_RGB_LEVEL, PNG_GRAY_AS_RGB_STRATEGY
    else:
        level, strategy = PNG_LEVEL, PNG_STRATEGY
    content = encode_png(pixels, level=level, filter=PNG_FILTER, strategy=strategy)
    return EncodedImage(content, *PNG)


def _palette_png(image: Image.Image, gray_levels: bool) -> bytes:
    """A "P" image (from ``_paletted``) as PNG: exact indexes, palette, transparent index.

    Indexes of ascending gray levels change as smoothly as the levels: they are written like
    gray pixels (filtered, run-length deflate); other palettes unfiltered.
    """
    palette = np.array(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    transparent = image.info.get("transparency")
    if gray_levels:
        level, filter, strategy = PNG_LEVEL, PNG_FILTER, PNG_STRATEGY
    else:
        level, filter, strategy = PALETTE_PNG_LEVEL, "none", "default"
    return encode_png(
        np.asarray(image, dtype=np.uint8),
        level=level,
        filter=filter,
        strategy=strategy,
        palette=palette,
        transparent_index=transparent if isinstance(transparent, int) else None,
    )


def _paletted(block: PixelBlock) -> tuple[Image.Image, bool]:
    """A "P" image of at most 256 colours, and whether its palette is ascending gray levels.

    Index 255 is transparent when pixels are invalid. Gray keeps its levels (see
    ``_gray_palette``); colour gets an exact palette up to 256 colours (255 with invalid
    pixels) and is quantised beyond.
    """
    color = _color(block, paint=True)
    invalid = ~block.valid
    has_invalid = bool(invalid.any())
    limit = 255 if has_invalid else 256
    block_is_gray = color.ndim == 2
    exact = _gray_palette(color, invalid, limit) if block_is_gray else None
    if exact is None and Image.fromarray(color).getcolors(limit) is not None:
        exact = _exact_palette(color, invalid)
    if exact is not None:
        index, palette = exact
        image = Image.fromarray(index, mode="P")
        image.putpalette(palette.ravel().tolist())
    else:
        quantized = Image.fromarray(color).quantize(colors=limit, method=PALETTE_QUANTIZE)
        index = np.array(quantized, dtype=np.uint8)
        palette_list = (quantized.getpalette() or [])[: limit * 3]
        palette_list += [0] * (768 - len(palette_list))
        image = Image.fromarray(index, mode="P")
        image.putpalette(palette_list)
    if has_invalid:
        index = np.array(image, dtype=np.uint8)
        index[invalid] = 255
        pal = image.getpalette() or []
        image = Image.fromarray(index, mode="P")
        image.putpalette(pal)
        image.info["transparency"] = 255
    return image, block_is_gray


def _gray_palette(
    gray: U8Array, invalid: npt.NDArray[np.bool_], limit: int
) -> tuple[U8Array, U8Array]:
    """Indexes and (256, 3) palette of the gray levels in use.

    When they do not fit (all 256 levels and the transparent index), the least used levels
    join their nearest neighbour: those pixels are off by one level, the rest exact.
    """
    counts = np.bincount(gray[~invalid], minlength=256)
    used = counts > 0
    while int(used.sum()) > limit:
        used[np.argmin(np.where(used, counts, np.iinfo(counts.dtype).max))] = False
    kept = np.flatnonzero(used)
    if kept.size == 0:
        kept = np.zeros(1, dtype=np.int64)
    levels = np.arange(256)
    if kept.size > 1:
        right = np.clip(np.searchsorted(kept, levels), 1, kept.size - 1)
        nearer_left = levels - kept[right - 1] <= kept[right] - levels
        lut = np.where(nearer_left, right - 1, right).astype(np.uint8)
    else:
        lut = np.zeros(256, dtype=np.uint8)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: kept.size] = kept.astype(np.uint8)[:, None]
    return lut[gray], palette


def _exact_palette(rgb: U8Array, invalid: npt.NDArray[np.bool_]) -> tuple[U8Array, U8Array]:
    """Indexes and (256, 3) palette of an RGB image known to use at most 256 colours."""
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16)
        | (rgb[..., 1].astype(np.uint32) << 8)
        | rgb[..., 2].astype(np.uint32)
    )
    colors, inverse = np.unique(packed[~invalid], return_inverse=True)
    index = np.zeros(packed.shape, dtype=np.uint8)
    index[~invalid] = inverse.astype(np.uint8)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: colors.size, 0] = (colors >> 16) & 255
    palette[: colors.size, 1] = (colors >> 8) & 255
    palette[: colors.size, 2] = colors & 255
    return index, palette


def _save(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    if "transparency" in image.info:
        options["transparency"] = image.info["transparency"]
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def _little_endian(data: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<"), copy=False))


def pick_nodata(data: npt.NDArray[Any], valid: npt.NDArray[np.bool_]) -> float | None:
    """A nodata value no valid pixel uses (NaN for floats); None when every value is used."""
    if np.issubdtype(data.dtype, np.floating):
        return math.nan
    info = np.iinfo(data.dtype)
    for candidate in (info.min, info.max, 0):  # compared in place: no copy of the valid pixels
        if not ((data == candidate) & valid).any():
            return float(candidate)
    if data.dtype.itemsize > 2:
        return None
    values = data[:, valid]
    shifted = values if info.min == 0 else values.astype(np.int32) - info.min
    in_use = np.bincount(shifted.ravel(), minlength=int(info.max) - int(info.min) + 1) > 0
    gaps = np.flatnonzero(~in_use)
    return float(gaps[0] + info.min) if gaps.size else None


def _tiff_options(
    block: PixelBlock, compression: TiffCompression, quality: int, tolerance: float
) -> dict[str, Any]:
    """GDAL creation options of a TIFF ``compression``: None is uncompressed (ArcGIS's
    default, and the cheapest to write); JPEG applies to 8-bit data of 1 or 3 bands, other
    data is written with LZ77 instead (lossless, never an error); LERC keeps every value
    within ``tolerance``."""
    if compression == "LZ77":
        return {"compress": "deflate", "zlevel": TIFF_DEFLATE_LEVEL}
    if compression == "JPEG":
        if block.data.dtype == np.uint8 and block.data.shape[0] in (1, 3):
            return {"compress": "jpeg", "jpeg_quality": max(1, min(100, int(quality)))}
        return {"compress": "deflate", "zlevel": TIFF_DEFLATE_LEVEL}
    if compression == "LERC":
        return {"compress": "lerc", "max_z_error": max(float(tolerance), 0.0)}
    return {}


def _geotiff(
    block: PixelBlock, extent: Extent, crs: str, options: dict[str, Any] | None = None
) -> bytes:
    data = block.data
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    bands, rows, cols = data.shape
    valid = block.valid
    has_invalid = not bool(valid.all())
    nodata = block.nodata
    if nodata is not None and not _representable(nodata, data.dtype):
        nodata = None
    use_mask = False
    lossy = (options or {}).get("compress") == "jpeg"
    if lossy:  # a nodata value would not survive JPEG: invalid pixels go in the mask
        nodata = None
        use_mask = has_invalid
    elif has_invalid and nodata is None:
        nodata = pick_nodata(data, valid)
        use_mask = nodata is None
    fill = nodata if has_invalid and nodata is not None else None
    transform = Affine(
        extent.width / cols, 0.0, extent.xmin, 0.0, -extent.height / rows, extent.ymax
    )
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": bands,
        "dtype": data.dtype.name,
        "crs": crs_from_key(crs),
        "transform": transform,
        **(options or {}),
    }
    if nodata is not None:
        profile["nodata"] = nodata
    # 8-bit images are pixel-interleaved and written whole (small); others band by band, each
    # band filled in its own copy, so the encoder never holds a second copy of the image
    by_band = not (bands > 1 and data.dtype == np.uint8)
    profile["interleave"] = "band" if by_band else "pixel"
    if not by_band and fill is not None:
        data = data.copy()
        data[:, ~valid] = fill
    with quiet_env(), MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            if by_band:
                # the fill in the band's type (it is representable): np.where keeps the dtype
                value = None if fill is None else np.array(fill, dtype=data.dtype)
                for b in range(bands):
                    band = data[b] if value is None else np.where(valid, data[b], value)
                    dst.write(band, b + 1)
            else:
                dst.write(data)
            if use_mask:
                dst.write_mask(np.where(valid, 255, 0).astype(np.uint8))
            if block.band_names and len(block.band_names) == bands:
                for i, name in enumerate(block.band_names, start=1):
                    dst.set_band_description(i, name)
        return bytes(memfile.read())


def _representable(value: float, dtype: np.dtype[Any]) -> bool:
    if np.issubdtype(dtype, np.floating):
        return True
    if not math.isfinite(value) or not float(value).is_integer():
        return False
    info = np.iinfo(dtype)
    return bool(info.min <= value <= info.max)


def _lerc(block: PixelBlock, tolerance: float) -> bytes:
    data = block.data
    if data.dtype in (np.int64, np.uint64, np.bool_):
        data = data.astype(np.float64 if data.dtype != np.bool_ else np.uint8)
    data = np.ascontiguousarray(data)
    valid = block.valid
    if not bool(valid.all()):
        data = data.copy()
        data[:, ~valid] = 0
    max_err = max(float(tolerance), 0.0)
    if np.issubdtype(data.dtype, np.integer) and max_err < 0.5:
        max_err = 0.5  # lossless for integers
    mask = np.ascontiguousarray(valid.astype(np.uint8))
    arr = data[0] if data.shape[0] == 1 else data
    n_bytes = data.nbytes + mask.nbytes + 4096
    result = lerc.encode(arr, 1, True, mask, max_err, n_bytes)
    if not isinstance(result, tuple) or len(result) < 3 or result[0] != 0:
        code = result[0] if isinstance(result, tuple) and result else result
        raise NotSupported(f"LERC encoding failed (error {code}); try format=tiff.")
    return bytes(result[2][: result[1]])
