"""Pixel-level helpers: pixel types, band selection, nodata masking and the 8-bit stretch.

Every function takes and returns a :class:`~livemosaic.core.ports.PixelBlock` (or plain
numpy arrays) and never touches files. ``valid`` is the per-pixel validity mask; pixels that
are not valid carry no meaning in ``data``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from livemosaic.core.models import BandStats, PixelType
from livemosaic.core.ports import PixelBlock
from livemosaic.errors import InvalidParameter, NotSupported

FloatArray = npt.NDArray[np.float64]

PIXEL_DTYPES: dict[str, np.dtype[np.generic]] = {
    "U1": np.dtype(np.uint8),
    "U2": np.dtype(np.uint8),
    "U4": np.dtype(np.uint8),
    "U8": np.dtype(np.uint8),
    "S8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "S16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "S32": np.dtype(np.int32),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
}

# value ranges of the sub-byte types, which are stored as uint8
_BIT_RANGES: dict[str, tuple[float, float]] = {"U1": (0, 1), "U2": (0, 3), "U4": (0, 15)}

EIGHT_BIT_FORMATS = frozenset({"png", "png8", "png24", "png32", "jpg", "jpgpng", "bmp", "gif"})


def numpy_dtype(pixel_type: PixelType | str) -> np.dtype[np.generic]:
    """The numpy dtype that stores an ArcGIS pixel type (uint8 for unknown types)."""
    return PIXEL_DTYPES.get(pixel_type, np.dtype(np.uint8))


def pixel_type_range(pixel_type: PixelType | str) -> tuple[float, float]:
    """The smallest and largest value a pixel type holds."""
    if pixel_type in _BIT_RANGES:
        return _BIT_RANGES[pixel_type]
    return dtype_range(numpy_dtype(pixel_type))


def dtype_range(dtype: np.dtype[Any]) -> tuple[float, float]:
    """The smallest and largest value a numpy integer or float dtype holds."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(cast(Any, dtype))
        return float(info.min), float(info.max)
    finfo = np.finfo(cast(Any, dtype))
    return float(finfo.min), float(finfo.max)


def empty_block(bands: int, rows: int, cols: int, dtype: npt.DTypeLike = np.uint8) -> PixelBlock:
    """A block where no pixel is valid (what an area without items renders to)."""
    return PixelBlock(
        data=np.zeros((max(bands, 1), rows, cols), dtype=dtype),
        valid=np.zeros((rows, cols), dtype=bool),
    )


def with_data(
    block: PixelBlock, data: npt.NDArray[np.generic], valid: npt.NDArray[np.bool_] | None = None
) -> PixelBlock:
    """A copy of ``block`` with new data (and optionally a new mask); band names are dropped
    when the band count changes."""
    names = block.band_names if data.shape[0] == block.data.shape[0] else ()
    return PixelBlock(
        data=data,
        valid=block.valid if valid is None else valid,
        band_names=names,
        nodata=block.nodata,
    )


def select_bands(
    block: PixelBlock, band_ids: Sequence[int], parameter: str = "bandIds"
) -> PixelBlock:
    """Bands by zero-based index, in the given order (repeats allowed)."""
    count = block.data.shape[0]
    if not band_ids:
        raise InvalidParameter(parameter, "at least one band index is required.")
    bad = [b for b in band_ids if b < 0 or b >= count]
    if bad:
        raise InvalidParameter(
            parameter,
            f"band index {bad[0]} is out of range; the image has {count} band(s), "
            f"so indexes run from 0 to {count - 1}.",
            accepted="zero-based band indexes separated by commas, e.g. 2,1,0",
        )
    idx = list(band_ids)
    names = tuple(block.band_names[i] for i in idx) if len(block.band_names) == count else ()
    return PixelBlock(
        data=block.data[idx], valid=block.valid, band_names=names, nodata=block.nodata
    )


def convert_pixel_type(block: PixelBlock, pixel_type: PixelType | str) -> PixelBlock:
    """Values converted to ``pixel_type``: rounded for integer types, clamped to its range."""
    if pixel_type == "UNKNOWN":
        return block
    if pixel_type not in PIXEL_DTYPES:
        raise NotSupported(
            f"Pixel type '{pixel_type}' is not supported for output.",
            next_step="Use U1, U2, U4, U8, S8, U16, S16, U32, S32, F32 or F64.",
        )
    dtype = PIXEL_DTYPES[pixel_type]
    lo, hi = pixel_type_range(pixel_type)
    src = block.data
    if src.dtype == dtype and pixel_type not in _BIT_RANGES:
        return block
    if pixel_type not in _BIT_RANGES and np.can_cast(src.dtype, dtype, casting="safe"):
        out = src.astype(dtype)  # every value fits: one copy, no rounding or clipping
    elif np.issubdtype(dtype, np.integer):
        values = np.nan_to_num(src.astype(np.float64), nan=0.0, posinf=hi, neginf=lo)
        out = np.clip(np.rint(values), lo, hi).astype(dtype)
    else:
        values = src.astype(np.float64)
        out = np.clip(values, lo, hi).astype(dtype)
    nodata = block.nodata
    if nodata is not None and not (lo <= nodata <= hi):
        nodata = None
    return PixelBlock(data=out, valid=block.valid, band_names=block.band_names, nodata=nodata)


def apply_nodata(
    block: PixelBlock,
    values: Sequence[float],
    interpretation: Literal["any", "all"] = "any",
) -> PixelBlock:
    """Mark pixels invalid whose band values equal the user's nodata values.

    ``values`` holds one value for all bands or one per band. With "any" a pixel is nodata
    when any band equals its value; with "all" when every band does.
    """
    bands = block.data.shape[0]
    if not values:
        return block
    if len(values) == 1:
        per_band = [float(values[0])] * bands
    elif len(values) == bands:
        per_band = [float(v) for v in values]
    else:
        raise InvalidParameter(
            "noData",
            f"{len(values)} values were given but the image has {bands} band(s).",
            accepted="one value for all bands, or one value per band separated by commas",
        )
    hits = np.stack([_equals(block.data[b], v) for b, v in enumerate(per_band)], axis=0)
    is_nodata = hits.any(axis=0) if interpretation == "any" else hits.all(axis=0)
    nodata = per_band[0] if len(set(per_band)) == 1 else block.nodata
    return PixelBlock(
        data=block.data,
        valid=block.valid & ~is_nodata,
        band_names=block.band_names,
        nodata=nodata,
    )


def _equals(band: npt.NDArray[np.generic], value: float) -> npt.NDArray[np.bool_]:
    if np.isnan(value):
        if np.issubdtype(band.dtype, np.floating):
            return np.asarray(np.isnan(band), dtype=bool)
        return np.zeros(band.shape, dtype=bool)
    if not fits_float(band.dtype, value):  # no pixel holds it (and casting it would overflow)
        return np.zeros(band.shape, dtype=bool)
    return cast(npt.NDArray[np.bool_], np.asarray(band == value, dtype=bool))


def valid_min_max(block: PixelBlock, band: int) -> tuple[float, float] | None:
    """Smallest and largest finite valid value of one band (None when there is none)."""
    values = block.data[band][block.valid].astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    return float(values.min()), float(values.max())


def block_stats(block: PixelBlock) -> tuple[BandStats, ...]:
    """Statistics of each band over the block's valid, finite pixels (DRA)."""
    out: list[BandStats] = []
    for b in range(block.data.shape[0]):
        values = block.data[b][block.valid].astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            out.append(BandStats(0.0, 0.0, 0.0, 0.0, 0))
        else:
            out.append(
                BandStats(
                    float(values.min()),
                    float(values.max()),
                    float(values.mean()),
                    float(values.std()),
                    int(values.size),
                )
            )
    return tuple(out)


def linear_to_u8(band: FloatArray, lo: float, hi: float) -> npt.NDArray[np.uint8]:
    """Map ``lo..hi`` linearly onto 0..255 (clamped, rounded); a flat range maps to 0."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return np.zeros(band.shape, dtype=np.uint8)
    scaled = (np.nan_to_num(band, nan=lo) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def stretch_to_u8(block: PixelBlock, stats: Sequence[BandStats | None] = ()) -> PixelBlock:
    """ArcGIS's default renderer for 8-bit formats: a min-max stretch of each band to 0..255.

    Band ``b`` uses ``stats[b]`` (the service statistics) when given and non-degenerate, else
    the block's own valid min/max. uint8 input is returned unchanged; invalid pixels become 0.
    """
    if block.data.dtype == np.uint8:
        return block
    bands = block.data.shape[0]
    out = np.zeros(block.data.shape, dtype=np.uint8)
    for b in range(bands):
        st = stats[b] if b < len(stats) else None
        rng: tuple[float, float] | None = None
        if st is not None and np.isfinite(st.min) and np.isfinite(st.max) and st.max > st.min:
            rng = (st.min, st.max)
        else:
            rng = valid_min_max(block, b)
        if rng is None:
            continue
        out[b] = linear_to_u8(block.data[b].astype(np.float64), rng[0], rng[1])
    out[:, ~block.valid] = 0
    return PixelBlock(data=out, valid=block.valid, band_names=block.band_names, nodata=None)


def parse_band_list(text: str) -> tuple[int, ...]:
    """Zero-based band indexes from text such as ``"3,2,1"`` or ``"[3, 2, 1]"`` (() if bad)."""
    raw = text.strip().strip("[]")
    try:
        return tuple(int(v) for v in raw.split(",") if v.strip())
    except ValueError:
        return ()


def display_bands(bands: int, default_ids: Sequence[int] = ()) -> tuple[int, ...] | None:
    """Bands an 8-bit image shows without bandIds: None to keep 1 or 3 bands, else
    ``default_ids`` (the service's defaultBandIds) when usable, else the first (2 bands) or
    first three bands."""
    if bands in (1, 3):
        return None
    if bands == 2:
        return (0,)
    if len(default_ids) in (1, 3) and all(0 <= i < bands for i in default_ids):
        return tuple(default_ids)
    return (0, 1, 2)


def fits_float(dtype: np.dtype[Any], value: float) -> bool:
    """False for a finite value beyond the range of a floating dtype (True for other dtypes)."""
    if not np.issubdtype(dtype, np.floating) or not math.isfinite(value):
        return True
    return abs(value) <= float(np.finfo(cast(Any, dtype)).max)


def fill_invalid(block: PixelBlock, *, in_place: bool = False) -> PixelBlock:
    """Write ``block.nodata`` (or 0 when it does not fit the dtype) into invalid pixels
    (into ``block.data`` itself when ``in_place``: only for data nobody else holds)."""
    if bool(block.valid.all()):
        return block
    data = block.data if in_place else block.data.copy()
    fill: float = 0.0
    nodata = block.nodata
    if nodata is not None:
        if np.issubdtype(data.dtype, np.integer):
            lo, hi = dtype_range(data.dtype)
            if np.isfinite(nodata) and lo <= nodata <= hi and float(nodata).is_integer():
                fill = nodata
            else:
                nodata = None
        elif fits_float(data.dtype, nodata):
            fill = nodata
        else:
            nodata = None
    data[:, ~block.valid] = fill
    return PixelBlock(data=data, valid=block.valid, band_names=block.band_names, nodata=nodata)


__all__ = [
    "EIGHT_BIT_FORMATS",
    "PIXEL_DTYPES",
    "apply_nodata",
    "block_stats",
    "convert_pixel_type",
    "display_bands",
    "dtype_range",
    "empty_block",
    "fill_invalid",
    "linear_to_u8",
    "numpy_dtype",
    "parse_band_list",
    "pixel_type_range",
    "select_bands",
    "stretch_to_u8",
    "valid_min_max",
    "with_data",
]
