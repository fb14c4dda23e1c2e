"""Reading pixels at ingest: validation (truncated or damaged files) and band statistics.

:func:`scan` reads a dataset's bands once and returns statistics per band over valid pixels.

* Up to :data:`FULL_READ_PIXELS` pixels per band it reads every row at full resolution (in
  chunks of about :data:`CHUNK_PIXELS`), so a truncated strip anywhere fails the read and the
  statistics are exact.
* Larger rasters are validated by reading the smallest overview completely plus a sample of
  full-resolution blocks spread over the file, always including the first and the last block
  (a truncated file fails at its end); their statistics come from a decimated read (at most
  :data:`STATS_SIDE` pixels on the longer side, which GDAL serves from an overview).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from rasterio.windows import Window

from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.crs import quiet_env
from livemosaic.adapters.raster.dataset import open_dataset, read_error
from livemosaic.core.models import BandStats
from livemosaic.errors import RasterRejected

FULL_READ_PIXELS = 64 * 1024 * 1024
CHUNK_PIXELS = 4 * 1024 * 1024
STATS_SIDE = 1024
SAMPLE_BLOCKS = 24

BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class _Moments:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf

    def add(self, values: npt.NDArray[np.float64]) -> None:
        n = int(values.size)
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.lo = min(self.lo, float(values.min()))
        self.hi = max(self.hi, float(values.max()))

    def result(self) -> BandStats | None:
        if self.count == 0:
            return None
        return BandStats(
            min=self.lo,
            max=self.hi,
            mean=self.mean,
            std=math.sqrt(max(self.m2 / self.count, 0.0)),
            count=self.count,
        )


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """Which bands to read and how validity is defined for them."""

    indexes: tuple[int, ...]  # 1-based bands whose statistics are wanted
    nodata: tuple[float | None, ...]  # per index
    scales: tuple[float, ...] = ()  # per index (packed data); empty = 1
    offsets: tuple[float, ...] = ()
    alpha: int | None = None  # 1-based alpha band (validity for every band)
    dataset_mask: bool = False  # the dataset has a per-dataset mask band (.msk / internal)


@dataclass(slots=True)
class ScanResult:
    """Statistics per planned band (None when no valid pixel) and whether NaN was seen."""

    stats: list[BandStats | None] = field(default_factory=list)
    nan_seen: bool = False
    exact: bool = False


def band_valid(values: npt.NDArray[Any], nodata: float | None) -> BoolArray:
    """Pixels of one band that are not nodata and not NaN."""
    is_float = np.issubdtype(values.dtype, np.floating)
    if nodata is None:
        return ~np.isnan(values) if is_float else np.ones(values.shape, dtype=bool)
    if math.isnan(nodata):
        return ~np.isnan(values) if is_float else np.ones(values.shape, dtype=bool)
    if not is_float and not float(nodata).is_integer():
        return np.ones(values.shape, dtype=bool)
    info = np.finfo(values.dtype) if is_float else np.iinfo(values.dtype)
    if not (float(info.min) <= nodata <= float(info.max)):
        valid = np.ones(values.shape, dtype=bool)
    else:
        valid = values != np.asarray(nodata, dtype=values.dtype)
    if is_float:
        valid &= ~np.isnan(values)
    return valid


class _Accumulator:
    def __init__(self, plan: ScanPlan) -> None:
        self.plan = plan
        self.moments = [_Moments() for _ in plan.indexes]
        self.nan_seen = False

    def feed(self, data: npt.NDArray[Any], mask: BoolArray | None) -> None:
        """``data`` holds the planned bands (then the alpha band, if any) for one chunk."""
        plan = self.plan
        base = mask
        if plan.alpha is not None:
            alpha_valid = data[len(plan.indexes)] > 0
            base = alpha_valid if base is None else base & alpha_valid
        for i, moments in enumerate(self.moments):
            values = data[i]
            if np.issubdtype(values.dtype, np.floating) and not self.nan_seen:
                self.nan_seen = bool(np.isnan(values).any())
            valid = band_valid(values, plan.nodata[i])
            if base is not None:
                valid &= base
            picked = values[valid].astype(np.float64)
            if plan.scales:
                picked = picked * plan.scales[i] + plan.offsets[i]
            picked = picked[np.isfinite(picked)]
            moments.add(picked)

    def result(self, exact: bool) -> ScanResult:
        return ScanResult([m.result() for m in self.moments], self.nan_seen, exact)


def _read_indexes(plan: ScanPlan) -> list[int]:
    return [*plan.indexes, *([plan.alpha] if plan.alpha is not None else [])]


def scan(
    ds: Any, plan: ScanPlan, *, path: str, validate: bool, stats: bool, confine: Confinement
) -> ScanResult:
    """Validate and/or compute statistics of the planned bands (RasterRejected on failure)."""
    if not validate and not stats:
        return ScanResult([None] * len(plan.indexes))
    width, height = int(ds.width), int(ds.height)
    if validate and width * height <= FULL_READ_PIXELS:
        return _scan_full(ds, plan, path)
    if validate:
        _validate_large(ds, plan, path, confine)
    return _scan_decimated(ds, plan, path)


def _scan_full(ds: Any, plan: ScanPlan, path: str) -> ScanResult:
    acc = _Accumulator(plan)
    indexes = _read_indexes(plan)
    width, height = int(ds.width), int(ds.height)
    block_rows = max(1, int(ds.block_shapes[0][0])) if ds.block_shapes else 1
    rows = max(1, CHUNK_PIXELS // max(1, width * len(indexes)))
    rows = max(block_rows, rows // block_rows * block_rows)
    try:
        with quiet_env():
            for row in range(0, height, rows):
                window = Window(0, row, width, min(rows, height - row))
                data = ds.read(indexes, window=window)
                mask = ds.read_masks(1, window=window) > 0 if plan.dataset_mask else None
                acc.feed(data, mask)
    except Exception as exc:
        raise read_error(path, exc) from exc
    return acc.result(exact=True)


def _scan_decimated(ds: Any, plan: ScanPlan, path: str) -> ScanResult:
    width, height = int(ds.width), int(ds.height)
    factor = max(1.0, max(width, height) / STATS_SIDE)
    out_w, out_h = max(1, round(width / factor)), max(1, round(height / factor))
    indexes = _read_indexes(plan)
    acc = _Accumulator(plan)
    try:
        with quiet_env():
            data = ds.read(indexes, out_shape=(len(indexes), out_h, out_w))
            mask = None
            if plan.dataset_mask:
                mask = ds.read_masks(1, out_shape=(out_h, out_w)) > 0
    except Exception as exc:
        raise read_error(path, exc) from exc
    acc.feed(data, mask)
    return acc.result(exact=factor == 1.0)


def _validate_large(ds: Any, plan: ScanPlan, path: str, confine: Confinement) -> None:
    indexes = _read_indexes(plan)
    overviews = ds.overviews(indexes[0]) if indexes else []
    try:
        if overviews:
            ovr = open_dataset(
                ds.name, confine=confine, path=path, overview_level=len(overviews) - 1
            )
            try:
                with quiet_env():
                    ovr.read(indexes)
            finally:
                ovr.close()
        windows = [w for _, w in ds.block_windows(indexes[0])]
        picks = sorted({round(i) for i in np.linspace(0, len(windows) - 1, SAMPLE_BLOCKS)})
        with quiet_env():
            for i in picks:
                ds.read(indexes, window=windows[i])
                if plan.dataset_mask:
                    ds.read_masks(1, window=windows[i])
    except RasterRejected:
        raise
    except Exception as exc:
        raise read_error(path, exc) from exc
