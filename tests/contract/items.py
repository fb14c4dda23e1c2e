"""Items and datasets the contract tests put into the stores."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from livemosaic.core.models import BandStats, MosaicDataset, PixelType, RasterItem
from tests.core.fakes import CRS, make_item

HOUR = 3_600_000


def dataset(name: str = "ds", *, history: bool = True) -> MosaicDataset:
    """A dataset in the fakes' CRS."""
    return MosaicDataset(name, CRS, history_enabled=history)


def item(
    n: int,
    *,
    x: float = 0.0,
    y: float = 10.0,
    size: int = 10,
    path: str | None = None,
    file_size: int = 100,
    mtime: int = 1,
    time: int | None = None,
    end_time: int | None = None,
    variable: str | None = None,
    dimensions: dict[str, float] | None = None,
    attributes: dict[str, Any] | None = None,
    bands: int = 1,
    pixel_type: PixelType = "U8",
    nodata: float | None = None,
    stats: tuple[BandStats, ...] | None = None,
    cell: float = 1.0,
) -> RasterItem:
    """Item ``n``: a size x size square at (x, y - size) .. (x + size, y), one file per item."""
    base = make_item(
        n,
        x,
        y,
        size,
        size,
        cell=cell,
        bands=bands,
        time=time,
        variable=variable,
        dimensions=dimensions,
        attributes=attributes,
        pixel_type=pixel_type,
    )
    if stats is None:
        stats = tuple(
            BandStats(float(n), float(n + 10 * (b + 1)), n + 5.0 * (b + 1), 2.0, size * size)
            for b in range(bands)
        )
    return replace(
        base,
        id=None,
        path=path or f"/data/in/{n}.tif",
        uri=path or f"/data/in/{n}.tif",
        file_size=file_size,
        file_mtime_ns=mtime,
        end_time=end_time,
        nodata=nodata,
        stats=stats,
    )


def close(a: float | None, b: float | None) -> bool:
    """Equal floats, NaN equal to NaN, within a relative 1e-9."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def same_stats(a: BandStats | None, b: BandStats | None) -> bool:
    """Pooled statistics equal within float rounding."""
    if a is None or b is None:
        return a is b
    return (
        close(a.min, b.min)
        and close(a.max, b.max)
        and close(a.mean, b.mean)
        and close(a.std, b.std)
        and a.count == b.count
    )
