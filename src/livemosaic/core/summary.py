"""What a dataset summary says about a set of items: the rules every catalog store follows.

Stores keep the summary incrementally (running counts and sums, indexed minima and maxima)
and must arrive where :func:`summarize` arrives from scratch. The rules shared by both live
here: which pixel type holds every item (:func:`widest_pixel_type`), how band statistics pool
(:class:`Moments`, :func:`pooled`), which band names and nodata value the dataset shows
(:func:`choose_band_names`, :func:`choose_nodata`) and the order of dimensions.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from livemosaic.core.models import (
    BandStats,
    DatasetSummary,
    DimensionSummary,
    Extent,
    PixelType,
    RasterItem,
    VariableSummary,
)

STD_TIME = "StdTime"
STD_Z = "StdZ"

_NUMPY_TYPES: dict[str, str] = {
    "U1": "uint8",
    "U2": "uint8",
    "U4": "uint8",
    "U8": "uint8",
    "S8": "int8",
    "U16": "uint16",
    "S16": "int16",
    "U32": "uint32",
    "S32": "int32",
    "F32": "float32",
    "F64": "float64",
    "C64": "complex64",
    "C128": "complex128",
}
_FROM_NUMPY: dict[str, PixelType] = {
    "uint8": "U8",
    "int8": "S8",
    "uint16": "U16",
    "int16": "S16",
    "uint32": "U32",
    "int32": "S32",
    "int64": "F64",
    "float32": "F32",
    "float64": "F64",
    "complex64": "C64",
    "complex128": "C128",
}
_SUB_BYTE = ("U1", "U2", "U4")


def widest_pixel_type(types: Iterable[str]) -> PixelType:
    """The pixel type that holds every value of all given types (U8 + S8 → S16)."""
    known = sorted({t for t in types if t in _NUMPY_TYPES})
    if not known:
        return "UNKNOWN"
    if len(known) == 1:
        return cast(PixelType, known[0])
    if all(t in _SUB_BYTE for t in known):
        return cast(PixelType, max(known, key=_SUB_BYTE.index))
    dtype = np.dtype(_NUMPY_TYPES[known[0]])
    for t in known[1:]:
        dtype = np.promote_types(dtype, np.dtype(_NUMPY_TYPES[t]))
    return _FROM_NUMPY.get(dtype.name, "F64")


def y_cell_size(size: float, item: RasterItem) -> float:
    """A dataset-unit cell size along y, keeping the native x/y aspect of the item's cells."""
    if item.cell_size_x > 0 and item.cell_size_y > 0:
        return size * item.cell_size_y / item.cell_size_x
    return size


@dataclass(slots=True)
class Moments:
    """Running sums of pooled statistics: items, pixel weight, sum and sum of squares."""

    items: int = 0
    weight: float = 0.0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, stats: BandStats, fallback_weight: float, sign: int) -> None:
        """Add (sign=1) or remove (sign=-1) one band's statistics."""
        if not (math.isfinite(stats.mean) and math.isfinite(stats.std)):
            return
        w = float(stats.count) if stats.count > 0 else fallback_weight
        self.weight += sign * w
        self.total += sign * w * stats.mean
        self.total_sq += sign * w * (stats.std * stats.std + stats.mean * stats.mean)


def pooled(weight: float, total: float, total_sq: float, lo: Any, hi: Any) -> BandStats:
    """BandStats from running sums and the minimum/maximum (NaN where unknown)."""
    lo_f = math.nan if lo is None else float(lo)
    hi_f = math.nan if hi is None else float(hi)
    if weight <= 0:
        return BandStats(lo_f, hi_f, math.nan, math.nan, 0)
    mean = total / weight
    var = max(total_sq / weight - mean * mean, 0.0)
    return BandStats(lo_f, hi_f, mean, math.sqrt(var), int(round(weight)))


def band_names_key(names: Sequence[str]) -> str:
    """The text a set of band names is counted under (JSON)."""
    return json.dumps(list(names))


def choose_band_names(counts: Mapping[str, int]) -> tuple[str, ...]:
    """The band names a dataset shows: the longest list, then the most common, then by text.

    ``counts`` maps :func:`band_names_key` texts to how many items have those names.
    """
    if not counts:
        return ()
    decoded = [(tuple(json.loads(k)), n, k) for k, n in counts.items() if n > 0]
    if not decoded:
        return ()
    decoded.sort(key=lambda t: (-len(t[0]), -t[1], t[2]))
    return tuple(str(x) for x in decoded[0][0])


def nodata_key(value: float) -> str:
    """The exact text a nodata value is counted under (keeps NaN and infinities)."""
    return repr(float(value))


def choose_nodata(counts: Mapping[str, int]) -> float | None:
    """The most common nodata value (ties: the smallest :func:`nodata_key` text)."""
    keys = sorted(((k, n) for k, n in counts.items() if n > 0), key=lambda kv: (-kv[1], kv[0]))
    return float(keys[0][0]) if keys else None


def dimension_order(name: str) -> tuple[int, str]:
    """Sort key of dimensions: StdTime, StdZ, then the others by name."""
    return ({STD_TIME: 0, STD_Z: 1}.get(name, 2), name.lower())


def item_meta(item: RasterItem, key: str, dim: str | None = None) -> str:
    """A variable's unit/description (or a dimension's, with ``dim``) from item attributes."""
    value = item.attributes.get(key)
    if dim is not None:
        value = value.get(dim) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def item_dimension_values(item: RasterItem) -> dict[str, float]:
    """The dimension values an item of a variable contributes (StdTime from its time)."""
    values: dict[str, float] = {}
    if item.time is not None:
        values[STD_TIME] = float(item.time)
    values.update({k: float(v) for k, v in item.dimensions.items()})
    return values


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _min(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _max(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _variables(items: Sequence[RasterItem]) -> tuple[VariableSummary, ...]:
    out = []
    for var in sorted({it.variable for it in items if it.variable}):
        group = [it for it in items if it.variable == var]
        moments = Moments(items=len(group))
        unit = description = ""
        for it in group:
            for band in it.stats:
                moments.add(band, float(it.width * it.height), 1)
            if item_meta(it, "unit") or item_meta(it, "description"):
                unit, description = item_meta(it, "unit"), item_meta(it, "description")
        lo = _min(_finite(s.min) for it in group for s in it.stats)
        hi = _max(_finite(s.max) for it in group for s in it.stats)
        dims: dict[str, set[float]] = {}
        meta: dict[str, tuple[str, str]] = {}
        for it in group:
            for dim, value in item_dimension_values(it).items():
                dims.setdefault(dim, set()).add(value)
                u = item_meta(it, "dimension_units", dim)
                d = item_meta(it, "dimension_descriptions", dim)
                if u or d:
                    meta[dim] = (u, d)
        stats: BandStats | None = None
        if moments.weight > 0 or lo is not None:
            stats = pooled(moments.weight, moments.total, moments.total_sq, lo, hi)
        out.append(
            VariableSummary(
                name=var,
                dimensions=tuple(
                    DimensionSummary(d, tuple(sorted(dims[d])), *meta.get(d, ("", "")))
                    for d in sorted(dims, key=dimension_order)
                ),
                unit=unit,
                description=description,
                stats=stats,
                item_count=len(group),
            )
        )
    return tuple(out)


def _band_stats(items: Sequence[RasterItem]) -> tuple[BandStats, ...]:
    out: list[BandStats] = []
    for b in range(max((len(it.stats) for it in items), default=0)):
        group = [it for it in items if len(it.stats) > b]
        m = Moments(items=len(group))
        for it in group:
            m.add(it.stats[b], float(it.width * it.height), 1)
        lo = _min(_finite(it.stats[b].min) for it in group)
        hi = _max(_finite(it.stats[b].max) for it in group)
        out.append(pooled(m.weight, m.total, m.total_sq, lo, hi))
    return tuple(out)


def summarize(items: Iterable[RasterItem], version: int = 0) -> DatasetSummary:
    """The summary of a dataset holding exactly ``items`` (in the order they were added)."""
    found = list(items)
    if not found:
        return DatasetSummary(version=version)
    times = [it.time for it in found if it.time is not None]
    ends = [it.end_time if it.end_time is not None else it.time for it in found]
    known_ends = [e for e in ends if e is not None]
    nodata = Counter(nodata_key(it.nodata) for it in found if it.nodata is not None)
    return DatasetSummary(
        item_count=len(found),
        extent=Extent(
            min(it.extent.xmin for it in found),
            min(it.extent.ymin for it in found),
            max(it.extent.xmax for it in found),
            max(it.extent.ymax for it in found),
        ),
        min_cell_size_x=min(it.low_ps for it in found),
        min_cell_size_y=min(y_cell_size(it.low_ps, it) for it in found),
        max_cell_size_x=max(it.high_ps for it in found),
        max_cell_size_y=max(y_cell_size(it.high_ps, it) for it in found),
        time_extent=(min(times), max(known_ends)) if times and known_ends else None,
        variables=_variables(found),
        band_count=max(it.band_count for it in found),
        band_names=choose_band_names(Counter(band_names_key(it.band_names) for it in found)),
        pixel_type=widest_pixel_type({it.pixel_type for it in found}),
        band_stats=_band_stats(found),
        nodata=choose_nodata(nodata),
        version=version,
    )


__all__ = [
    "STD_TIME",
    "STD_Z",
    "Moments",
    "band_names_key",
    "choose_band_names",
    "choose_nodata",
    "dimension_order",
    "item_dimension_values",
    "item_meta",
    "nodata_key",
    "pooled",
    "summarize",
    "widest_pixel_type",
    "y_cell_size",
]
