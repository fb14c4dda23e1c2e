"""What every slice item of a multidimensional file shares: the file, the pixel scan, the item.

Used by :mod:`.multidim` (NetCDF and other containers) and :mod:`.grib`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.georef import Geo, pixel_type
from livemosaic.adapters.raster.stats import ScanPlan, ScanResult, scan
from livemosaic.core.models import BandStats, MaskKind, RasterItem
from livemosaic.core.ports import InspectOptions


@dataclass(frozen=True, slots=True)
class FileInfo:
    """The file being inspected."""

    path: str
    uri: str
    size: int
    mtime_ns: int
    fallback_time: int | None  # from the file name, for slices without a time dimension
    confine: Confinement  # what the file (and its subdatasets) may read


def scan_all(sub: Any, info: FileInfo, options: InspectOptions) -> tuple[ScanResult, ScanPlan]:
    """Validate and compute statistics of every band of ``sub`` (each band its own factors)."""
    indexes = tuple(range(1, sub.count + 1))
    scales = tuple(float(s) for s in sub.scales)
    offsets = tuple(float(o) for o in sub.offsets)
    packed = any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets)
    plan = ScanPlan(
        indexes=indexes,
        nodata=tuple(sub.nodatavals),
        scales=scales if packed else (),
        offsets=offsets if packed else (),
    )
    result = scan(
        sub,
        plan,
        path=info.path,
        validate=options.validate_pixels,
        stats=options.compute_stats,
        confine=info.confine,
    )
    return result, plan


def slice_item(
    sub: Any,
    uri: str,
    name: str,
    band: int,
    variable: str,
    geo: Geo,
    info: FileInfo,
    result: ScanResult,
    plan: ScanPlan,
    pos: int,
    time: int | None,
    end: int | None,
    dims: dict[str, float],
    attrs: dict[str, Any],
) -> RasterItem:
    """The item of band ``band`` of ``sub`` (position ``pos`` in the scan)."""
    dtype = sub.dtypes[band - 1]
    nodata = plan.nodata[pos]
    packed = bool(plan.scales)
    is_float = dtype.startswith("float") or packed
    mask: MaskKind = "nodata" if nodata is not None else ("nan" if is_float else "none")
    stat = result.stats[pos] if result.stats else None
    return RasterItem(
        path=info.path,
        uri=uri,
        name=name,
        bands=(band,),
        footprint=geo.footprint,
        extent=geo.extent,
        native_crs=geo.native_crs,
        native_extent=geo.native_extent,
        width=int(sub.width),
        height=int(sub.height),
        cell_size_x=geo.cell_size_x,
        cell_size_y=geo.cell_size_y,
        low_ps=geo.low_ps,
        high_ps=geo.high_ps,
        pixel_type=pixel_type(dtype, packed=packed),
        band_names=(variable,),
        nodata=None if nodata is None else float(nodata),
        mask_kind=mask,
        stats=(stat,) if isinstance(stat, BandStats) else (),
        file_size=info.size,
        file_mtime_ns=info.mtime_ns,
        time=time,
        end_time=end,
        variable=variable,
        dimensions=dims,
        attributes=attrs,
        scale=plan.scales[pos] if packed else None,
        offset=plan.offsets[pos] if packed else None,
        overview_count=len(sub.overviews(band)),
    )
