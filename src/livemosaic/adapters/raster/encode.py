"""Encoding pixel blocks in the exportImage formats (spec 6.1.2).

8-bit formats (png*, jpg, bmp, gif) take 1 band as gray, 2 bands as the first band's gray
and 3 or more as RGB from the first three; data that is not uint8 is clipped to 0..255
(NaN -> 0) as a safeguard — stretching is the caller's job. Invalid pixels become
transparent where the format has alpha (png, png32, png8, gif) and black otherwise.

``tiff`` is a GeoTIFF (deflate) with every band in the block's dtype, georeferenced with the
extent and CRS; invalid pixels hold the nodata value written in the nodata tag. Without a
nodata value, one the valid pixels do not use is picked (NaN for float data); when every value
of the type is in use an internal mask is written instead. ``lerc`` is a LERC 2 blob with the
valid mask (pylerc); ``bip``/``bsq`` are raw little-endian pixels, band-interleaved by pixel
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

from livemosaic.adapters.raster.crs import crs_from_key, quiet_env
from livemosaic.core.models import Extent
from livemosaic.core.ports import EncodedImage, ImageFormat, PixelBlock
from livemosaic.errors import InvalidParameter, NotSupported

PNG = ("image/png", "png")
JPEG = ("image/jpeg", "jpg")
OCTETS = "application/octet-stream"

U8Array = npt.NDArray[np.uint8]


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
    ) -> EncodedImage:
        """Bytes of ``block`` in ``fmt``; 8-bit formats expect uint8 data."""
        if block.data.ndim != 3 or block.data.shape[0] == 0:
            raise InvalidParameter("bandIds", "the image has no bands to encode.")
        all_valid = bool(block.valid.all())
        if fmt == "jpgpng":
            fmt = "jpg" if all_valid else "png"
        if fmt in ("png", "png32", "png24"):
            return _png(block, fmt, all_valid)
        if fmt == "png8":
            return EncodedImage(_save(_paletted(block), "PNG"), *PNG)
        if fmt == "jpg":
            image = Image.fromarray(_color(block, paint=True))
            q = max(1, min(100, int(quality)))
            return EncodedImage(_save(image, "JPEG", quality=q), *JPEG)
        if fmt == "bmp":
            return EncodedImage(
                _save(Image.fromarray(_color(block, paint=True)), "BMP"), "image/bmp", "bmp"
            )
        if fmt == "gif":
            return EncodedImage(_save(_paletted(block), "GIF"), "image/gif", "gif")
        if fmt == "tiff":
            return EncodedImage(_geotiff(block, extent, crs), "image/tiff", "tif")
        if fmt == "lerc":
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
    out = data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    out = np.ascontiguousarray(out)
    if paint:
        out[~block.valid] = 0
    return out


def _png(block: PixelBlock, fmt: str, all_valid: bool) -> EncodedImage:
    color = _color(block, paint=True)
    if fmt == "png24" and color.ndim == 2:
        color = np.repeat(color[:, :, None], 3, axis=2)
    alpha = fmt == "png32" or (fmt == "png" and not all_valid)
    if alpha:
        if fmt == "png32" and color.ndim == 2:
            color = np.repeat(color[:, :, None], 3, axis=2)
        a = np.where(block.valid, 255, 0).astype(np.uint8)
        layers = [color] if color.ndim == 3 else [color[:, :, None]]
        color = np.concatenate([*layers, a[:, :, None]], axis=2)
    return EncodedImage(_save(Image.fromarray(color), "PNG"), *PNG)


def _paletted(block: PixelBlock) -> Image.Image:
    """A "P" image of at most 256 colours; index 255 is transparent when pixels are invalid."""
    rgb = _color(block, paint=True)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    invalid = ~block.valid
    has_invalid = bool(invalid.any())
    limit = 255 if has_invalid else 256
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16)
        | (rgb[..., 1].astype(np.uint32) << 8)
        | rgb[..., 2].astype(np.uint32)
    )
    colors, inverse = np.unique(packed[~invalid], return_inverse=True)
    if colors.size <= limit:
        index = np.zeros(packed.shape, dtype=np.uint8)
        index[~invalid] = inverse.astype(np.uint8)
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[: colors.size, 0] = (colors >> 16) & 255
        palette[: colors.size, 1] = (colors >> 8) & 255
        palette[: colors.size, 2] = colors & 255
        image = Image.fromarray(index, mode="P")
        image.putpalette(palette.ravel().tolist())
    else:
        quantized = Image.fromarray(rgb).quantize(colors=limit, method=Image.Quantize.MEDIANCUT)
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
    return image


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
    used = np.unique(data[:, valid]) if valid.any() else np.array([], dtype=data.dtype)
    for candidate in (info.min, info.max, 0):
        if not np.isin(candidate, used):
            return float(candidate)
    if data.dtype.itemsize > 2 or used.size >= int(info.max) - int(info.min) + 1:
        return None
    gaps = np.setdiff1d(np.arange(info.min, info.max + 1, dtype=np.int64), used.astype(np.int64))
    return float(gaps[0]) if gaps.size else None


def _geotiff(block: PixelBlock, extent: Extent, crs: str) -> bytes:
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
    if has_invalid and nodata is None:
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
        "compress": "deflate",
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
                invalid = ~valid if fill is not None else None
                for b in range(bands):
                    band = data[b]
                    if invalid is not None:
                        band = band.copy()
                        band[invalid] = fill
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
