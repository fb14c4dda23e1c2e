"""The raster functions behind rendering rules (spec 7.5): Stretch, Colormap, ExtractBand,
Hillshade, Slope, Aspect and NDVI over :class:`~livemosaic.core.ports.PixelBlock` values.

Each function takes the input block, the rule's arguments (looked up case-insensitively),
the statistics that hold for the input bands and a :class:`FunctionContext`, and returns a
new block. Bad argument values raise ``InvalidParameter`` naming ``renderingRule``.

Choices where ArcGIS leaves room (documented in the functions):

* Stretch PercentClip (6) takes its percentiles from the requested block's valid pixels
  (no histograms are stored); ``MinPercent``/``MaxPercent`` default to 0.25/0.25.
  Histogram equalization (4) also works on the block. Gamma: ``out = in ** (1 / gamma)``
  on the 0..1 normalised value, so gamma > 1 brightens.
* Named colormaps are 256-entry ramps; non-8-bit input is min-max stretched to 0..255
  first (service statistics, else the block's). ``Random`` colours integer values mod 256.
* Hillshade, Slope and Aspect use Horn's 3x3 method (as ArcGIS and ``gdaldem``) with edge
  replication; a pixel is valid only when its whole 3x3 neighbourhood is. Horizontal units
  are metres where the CRS is projected in other units (degrees: metres at the equator).
* NDVI with an integer ``outputPixelType`` is scaled like ArcGIS's non-scientific output
  (``100 + 100 * ndvi``); defaults are VisibleBandID 0, InfraredBandID the last band.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from livemosaic.core.models import BandStats
from livemosaic.core.pixels import (
    block_stats,
    convert_pixel_type,
    linear_to_u8,
    select_bands,
    valid_min_max,
)
from livemosaic.core.ports import PixelBlock
from livemosaic.errors import InvalidParameter

FloatArray = npt.NDArray[np.float64]
PARAM = "renderingRule"


@dataclass(frozen=True, slots=True)
class FunctionContext:
    """What a raster function needs besides its arguments."""

    function: str
    output_pixel_type: str | None = None
    cell_size: tuple[float, float] = (1.0, 1.0)  # in CRS units
    meters_per_unit: float = 1.0


def argument(args: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A rule argument by name, matched case-insensitively."""
    lower = name.lower()
    for key, value in args.items():
        if key.lower() == lower:
            return value
    return default


def _bad(ctx: FunctionContext, text: str) -> InvalidParameter:
    return InvalidParameter(PARAM, f"{ctx.function}: {text}")


def number_arg(args: Mapping[str, Any], name: str, default: float, ctx: FunctionContext) -> float:
    """A numeric argument (numbers or numeric strings)."""
    raw = argument(args, name, None)
    if raw is None or raw == "":
        return default
    try:
        if isinstance(raw, bool):
            raise TypeError
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise _bad(ctx, f"argument {name} must be a number, got {raw!r}.") from None
    if not math.isfinite(value):
        raise _bad(ctx, f"argument {name} must be a finite number, got {raw!r}.")
    return value


def _bool_arg(args: Mapping[str, Any], name: str, default: bool) -> bool:
    raw = argument(args, name, None)
    if raw is None:
        return default
    if isinstance(raw, str):
        return raw.strip().lower() in ("true", "1", "yes")
    return bool(raw)


def _int_list(args: Mapping[str, Any], name: str, ctx: FunctionContext) -> list[int] | None:
    raw = argument(args, name, None)
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        items = [items]
    try:
        return [int(str(v).strip()) for v in items]
    except ValueError:
        raise _bad(ctx, f"argument {name} must be a list of integers, got {raw!r}.") from None


def _finish(block: PixelBlock, ctx: FunctionContext, default_type: str | None) -> PixelBlock:
    out_type = ctx.output_pixel_type or default_type
    return convert_pixel_type(block, out_type) if out_type else block


# --- None, ExtractBand --------------------------------------------------------------------


def none_function(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """Raw pixels."""
    return _finish(block, ctx, None)


def extract_band(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """The bands listed in ``BandIds`` (zero-based), in that order."""
    ids = _int_list(args, "BandIds", ctx)
    if not ids:
        raise _bad(ctx, "argument BandIds (zero-based band indexes) is required.")
    return _finish(select_bands(block, ids, parameter=PARAM), ctx, None)


# --- Stretch --------------------------------------------------------------------------------

STRETCH_TYPES = (0, 3, 4, 5, 6, 9)


def _custom_stats(args: Mapping[str, Any], ctx: FunctionContext) -> list[BandStats] | None:
    raw = argument(args, "Statistics", None)
    if not raw:
        return None
    out: list[BandStats] = []
    try:
        for entry in raw:
            mn, mx, mean, std = (float(v) for v in list(entry)[:4])
            out.append(BandStats(mn, mx, mean, std))
    except (TypeError, ValueError, OverflowError):
        raise _bad(
            ctx,
            "argument Statistics must be [[min, max, mean, stddev], …] with one entry per band.",
        ) from None
    return out


def _stretch_stats(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> list[BandStats]:
    bands = block.data.shape[0]
    custom = _custom_stats(args, ctx)
    if custom is not None:
        if len(custom) != 1 and len(custom) < bands:
            raise _bad(ctx, f"Statistics has {len(custom)} entries for {bands} band(s).")
        return [custom[b] if len(custom) > 1 else custom[0] for b in range(bands)]
    given = [stats[b] if b < len(stats) else None for b in range(bands)]
    if not _bool_arg(args, "DRA", False) and all(
        st is not None and st.max > st.min for st in given
    ):
        return [st for st in given if st is not None]
    own = block_stats(block)  # DRA, or service statistics missing for some band
    if _bool_arg(args, "DRA", False):
        return list(own)
    return [st if st is not None and st.max > st.min else own[b] for b, st in enumerate(given)]


def _normalise(
    values: FloatArray,
    valid: npt.NDArray[np.bool_],
    st: BandStats,
    stype: int,
    args: Mapping[str, Any],
    ctx: FunctionContext,
) -> FloatArray:
    """Values mapped onto 0..1 by the stretch type (before clamping and gamma)."""
    if stype == 3:
        k = number_arg(args, "NumberOfStandardDeviations", 2.0, ctx)
        lo, hi = st.mean - k * st.std, st.mean + k * st.std
    elif stype in (5, 9):
        lo, hi = st.min, st.max
    elif stype == 6:
        min_pct = number_arg(args, "MinPercent", 0.25, ctx)
        max_pct = number_arg(args, "MaxPercent", 0.25, ctx)
        if not (0 <= min_pct < 100 and 0 <= max_pct < 100 and min_pct + max_pct < 100):
            raise _bad(ctx, "MinPercent and MaxPercent must be 0..100 and sum to less than 100.")
        sample = values[valid & np.isfinite(values)]
        if sample.size == 0:
            return np.zeros_like(values)
        lo = float(np.percentile(sample, min_pct))
        hi = float(np.percentile(sample, 100.0 - max_pct))
    else:  # 4: histogram equalization over the block
        sample = np.sort(values[valid & np.isfinite(values)])
        if sample.size == 0:
            return np.zeros_like(values)
        ranks = np.searchsorted(sample, values, side="right").astype(np.float64)
        return ranks / float(sample.size)
    if not hi > lo:
        return np.zeros_like(values)
    norm = (values - lo) / (hi - lo)
    if stype == 9:
        gain = 2.0 * number_arg(args, "SigmoidStrengthLevel", 2.0, ctx)
        lo_s = 1.0 / (1.0 + math.exp(gain * 0.5))
        hi_s = 1.0 / (1.0 + math.exp(-gain * 0.5))
        norm = (1.0 / (1.0 + np.exp(-gain * (np.clip(norm, 0, 1) - 0.5))) - lo_s) / (hi_s - lo_s)
    return norm


def stretch(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """Contrast stretch of each band onto ``Min``..``Max`` (0..255, U8 by default).

    Statistics come from ``Statistics``, else the block itself when ``DRA`` is true, else the
    service statistics, else the block. StretchType 0 returns the pixels unchanged.
    """
    stype_raw = number_arg(args, "StretchType", 0, ctx)
    stype = int(stype_raw)
    if stype != stype_raw or stype not in STRETCH_TYPES:
        raise _bad(
            ctx,
            f"StretchType {stype_raw:g} is not supported; use 0 (none), 3 (standard deviation), "
            "4 (histogram equalization), 5 (minimum-maximum), 6 (percent clip) or 9 (sigmoid).",
        )
    if stype == 0:
        return _finish(block, ctx, None)
    out_min = number_arg(args, "Min", 0.0, ctx)
    out_max = number_arg(args, "Max", 255.0, ctx)
    use_gamma = _bool_arg(args, "UseGamma", False)
    gammas = argument(args, "Gamma", None) if use_gamma else None
    if gammas is not None and not isinstance(gammas, list | tuple):
        gammas = [gammas]
    band_stats = _stretch_stats(block, args, stats, ctx)
    out = np.zeros(block.data.shape, dtype=np.float64)
    for b in range(block.data.shape[0]):
        values = block.data[b].astype(np.float64)
        norm = np.clip(_normalise(values, block.valid, band_stats[b], stype, args, ctx), 0.0, 1.0)
        if gammas:
            try:
                gamma = float(gammas[b] if b < len(gammas) else gammas[-1])
            except (TypeError, ValueError, OverflowError, KeyError, IndexError):
                raise _bad(ctx, f"Gamma must be a list of numbers, got {gammas!r}.") from None
            if gamma > 0:
                norm = norm ** (1.0 / gamma)
        out[b] = out_min + norm * (out_max - out_min)
    out[:, ~block.valid] = 0
    return _finish(PixelBlock(out, block.valid, block.band_names), ctx, "U8")


# --- Colormap ------------------------------------------------------------------------------


def _ramp(stops: Sequence[tuple[int, tuple[int, int, int]]]) -> npt.NDArray[np.uint8]:
    idx = np.arange(256, dtype=np.float64)
    xs = [s[0] for s in stops]
    lut = np.stack([np.interp(idx, xs, [s[1][c] for s in stops]) for c in range(3)], axis=1)
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)


NAMED_COLORMAPS: dict[str, npt.NDArray[np.uint8]] = {
    "gray": _ramp([(0, (0, 0, 0)), (255, (255, 255, 255))]),
    "ndvi": _ramp(
        [
            (0, (165, 0, 38)),
            (64, (244, 109, 67)),
            (128, (255, 255, 191)),
            (192, (102, 189, 99)),
            (255, (0, 104, 55)),
        ]
    ),
    "elevation": _ramp(
        [(0, (56, 128, 60)), (85, (222, 214, 135)), (170, (153, 102, 51)), (255, (255, 255, 255))]
    ),
    "random": np.random.default_rng(20240912).integers(0, 256, size=(256, 3)).astype(np.uint8),
}


def colormap(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """The first band coloured through ``Colormap`` entries or a named ramp: 3-band U8."""
    band = block.data[0].astype(np.float64)
    valid = block.valid & np.isfinite(band)
    entries = argument(args, "Colormap", None)
    name = argument(args, "ColormapName", None)
    rgb = np.zeros((3, *band.shape), dtype=np.uint8)
    if entries:
        try:
            table = sorted((float(e[0]), [int(c) for c in list(e)[1:4]]) for e in entries)
            keys = np.array([t[0] for t in table], dtype=np.float64)
            colours = np.array([t[1] for t in table], dtype=np.int64)
            if colours.shape[1] != 3:
                raise ValueError
        except (TypeError, ValueError, IndexError, KeyError, OverflowError):
            raise _bad(ctx, "argument Colormap must be [[value, red, green, blue], …].") from None
        values = np.rint(np.nan_to_num(band))
        pos = np.clip(np.searchsorted(keys, values), 0, len(keys) - 1)
        matched = valid & (keys[pos] == values)
        picked = np.clip(colours[pos], 0, 255).astype(np.uint8)
        rgb = np.moveaxis(picked, -1, 0)
        valid = matched
    elif name is not None:
        lut = NAMED_COLORMAPS.get(str(name).strip().lower())
        if lut is None:
            raise _bad(
                ctx, f"ColormapName '{name}' is not supported; use Random, NDVI, Elevation or Gray."
            )
        if str(name).strip().lower() == "random" or block.data.dtype == np.uint8:
            index = np.mod(np.rint(np.nan_to_num(band)), 256).astype(np.intp)
        else:
            st = stats[0] if stats else None
            rng = (
                (st.min, st.max) if st is not None and st.max > st.min else valid_min_max(block, 0)
            )
            lo, hi = rng if rng is not None else (0.0, 0.0)
            index = linear_to_u8(band, lo, hi).astype(np.intp)
        rgb = np.moveaxis(lut[index], -1, 0)
    else:
        raise _bad(ctx, "give either Colormap [[value, r, g, b], …] or ColormapName.")
    rgb = rgb.copy()
    rgb[:, ~valid] = 0
    return _finish(PixelBlock(rgb, valid), ctx, "U8")


# --- Hillshade --------------------------------------------------------------------------------


def _neighbours(a: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    """The 3x3 neighbourhood of every pixel (edge replicated): a, b, c, d, e, f, g, h, i."""
    p = np.pad(a, 1, mode="edge")
    rows, cols = a.shape
    return [p[r : r + rows, c : c + cols] for r in range(3) for c in range(3)]


def hillshade(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """Illumination of the first band as a surface (Horn's method), 0..255 U8."""
    azimuth = number_arg(args, "Azimuth", 315.0, ctx)
    altitude = number_arg(args, "Altitude", 45.0, ctx)
    zfactor = number_arg(args, "ZFactor", 1.0, ctx)
    dzdx, dzdy, valid = _gradients(block, ctx)
    slope = np.arctan(zfactor * np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)
    zenith = math.radians(90.0 - altitude)
    az = math.radians((360.0 - azimuth + 90.0) % 360.0)
    shade = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(az - aspect)
    out = np.clip(np.rint(255.0 * shade), 0, 255).astype(np.uint8)
    out[~valid] = 0
    return _finish(PixelBlock(out[None, :, :], valid), ctx, "U8")


# --- Slope, Aspect ---------------------------------------------------------------------------

SLOPE_TYPES = {"1": 1, "degree": 1, "2": 2, "percentrise": 2, "3": 3, "scaled": 3}


def _gradients(
    block: PixelBlock, ctx: FunctionContext
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """dz/dx (east) and dz/dy (south) of the first band by Horn's 3x3 method, per ground
    unit (metres where the CRS says), and where the whole neighbourhood is valid."""
    cx = abs(ctx.cell_size[0]) * ctx.meters_per_unit
    cy = abs(ctx.cell_size[1]) * ctx.meters_per_unit
    if not (cx > 0 and cy > 0):
        raise _bad(ctx, "the cell size must be positive.")
    z = block.data[0].astype(np.float64)
    valid_in = block.valid & np.isfinite(z)
    z = np.where(valid_in, z, 0.0)
    a, b, c, d, _, f, g, h, i = _neighbours(z)
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * cx)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8.0 * cy)
    valid = np.asarray(np.logical_and.reduce(_neighbours(valid_in)), dtype=bool)
    return dzdx, dzdy, valid


def slope(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """Steepness of the first band as a surface (Horn's method), F32.

    ``SlopeType`` 1 / ``DEGREE`` (default): degrees 0..90; 2 / ``PERCENTRISE``: 100 * rise /
    run; 3 / ``SCALED``: degrees with the z-factor raised by ``PSZFactor * cellsize **
    PSPower`` (defaults 0.024 and 0.664, cell size in metres), as ArcGIS does for views that
    zoom. ``ZFactor`` (default 1) multiplies the heights.
    """
    zfactor = number_arg(args, "ZFactor", 1.0, ctx)
    raw_type = argument(args, "SlopeType", 1)
    kind = SLOPE_TYPES.get(str(raw_type).strip().lower().removesuffix(".0"))
    if kind is None:
        raise _bad(ctx, f"SlopeType {raw_type!r} is not supported; use 1 (DEGREE), 2 "
                   "(PERCENTRISE) or 3 (SCALED).")  # fmt: skip
    if kind == 3:
        power = number_arg(args, "PSPower", 0.664, ctx)
        factor = number_arg(args, "PSZFactor", 0.024, ctx)
        size = abs(ctx.cell_size[0]) * ctx.meters_per_unit
        zfactor += factor * size**power
    dzdx, dzdy, valid = _gradients(block, ctx)
    rise = zfactor * np.hypot(dzdx, dzdy)
    out = 100.0 * rise if kind == 2 else np.degrees(np.arctan(rise))
    out[~valid] = 0
    return _finish(PixelBlock(out[None, :, :], valid), ctx, "F32")


def aspect(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """Direction the first band's surface faces: degrees clockwise from north (0..360),
    -1 where it is flat (as ArcGIS), F32."""
    dzdx, dzdy, valid = _gradients(block, ctx)
    math_angle = np.degrees(np.arctan2(dzdy, -dzdx))  # counter-clockwise from east
    out = np.where(math_angle > 90.0, 450.0 - math_angle, 90.0 - math_angle)
    out = np.where(out >= 360.0, out - 360.0, out)
    out = np.where((dzdx == 0) & (dzdy == 0), -1.0, out)
    out[~valid] = 0
    return _finish(PixelBlock(out[None, :, :], valid), ctx, "F32")


# --- NDVI ----------------------------------------------------------------------------------


def ndvi(
    block: PixelBlock,
    args: Mapping[str, Any],
    stats: Sequence[BandStats | None],
    ctx: FunctionContext,
) -> PixelBlock:
    """(IR - VIS) / (IR + VIS), float32 in [-1, 1]; invalid where IR + VIS is 0."""
    bands = block.data.shape[0]
    if bands < 2:
        raise _bad(ctx, f"NDVI needs at least two bands; the input has {bands}.")
    vis_id = int(number_arg(args, "VisibleBandID", 0, ctx))
    ir_id = int(number_arg(args, "InfraredBandID", bands - 1, ctx))
    for label, idx in (("VisibleBandID", vis_id), ("InfraredBandID", ir_id)):
        if not 0 <= idx < bands:
            raise _bad(ctx, f"{label} {idx} is out of range; bands are numbered 0 to {bands - 1}.")
    vis = block.data[vis_id].astype(np.float64)
    ir = block.data[ir_id].astype(np.float64)
    den = ir + vis
    valid = block.valid & (den != 0) & np.isfinite(den)
    value = np.divide(ir - vis, den, out=np.zeros_like(den), where=valid)
    out_type = ctx.output_pixel_type
    if out_type and not out_type.startswith("F"):
        value = 100.0 + 100.0 * value
    value[~valid] = 0
    return _finish(PixelBlock(value[None, :, :], valid), ctx, "F32")


RasterFunction = Callable[
    [PixelBlock, Mapping[str, Any], Sequence[BandStats | None], FunctionContext], PixelBlock
]

FUNCTIONS: dict[str, RasterFunction] = {
    "None": none_function,
    "Stretch": stretch,
    "Colormap": colormap,
    "ExtractBand": extract_band,
    "Hillshade": hillshade,
    "NDVI": ndvi,
    "Slope": slope,
    "Aspect": aspect,
}
