"""Georeferencing facts of an open dataset: CRS key, extents, footprint, cell sizes.

A file with a geotransform but no CRS (ESRI ASCII grids, some GeoTIFFs) is taken to be in
the mosaic dataset's CRS, when the dataset has one (``Geo.crs_assumed``).

The footprint is the raster's boundary (its bounds, densified with 21 points per edge)
transformed into the dataset CRS as a closed clockwise ring; points that cannot be
transformed are dropped (see :func:`projector.transform_ring`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from livemosaic.adapters.raster.crs import crs_from_key, crs_key, key_of, same_crs
from livemosaic.adapters.raster.projector import (
    orient_clockwise,
    rectangle_ring,
    ring_extent,
    transform_finite,
    transform_ring,
)
from livemosaic.core.models import Extent, PixelType
from livemosaic.errors import RasterRejected

GEOREF_NEXT_STEP = (
    "Add georeferencing (a CRS and a geotransform), e.g. with `gdal_translate -a_srs EPSG:<n> "
    "-a_ullr <ulx> <uly> <lrx> <lry>` or a world file plus .prj, then add the file again. "
    "A file with a geotransform but no CRS is added to a dataset created with a CRS "
    "(`dataset create --crs`), whose CRS it is then assumed to be in."
)

PIXEL_TYPES: dict[str, PixelType] = {
    "uint8": "U8",
    "int8": "S8",
    "uint16": "U16",
    "int16": "S16",
    "uint32": "U32",
    "int32": "S32",
    "float32": "F32",
    "float64": "F64",
    "complex64": "C64",
    "complex128": "C128",
}

_NBITS_TYPES: dict[int, PixelType] = {1: "U1", 2: "U2", 4: "U4"}


@dataclass(frozen=True, slots=True)
class Geo:
    """Where a raster lies, natively and in the dataset CRS."""

    native_crs: str
    native_extent: Extent
    footprint: tuple[tuple[float, float], ...]
    extent: Extent
    cell_size_x: float
    cell_size_y: float
    low_ps: float
    high_ps: float
    crs_assumed: bool = False  # the file has no CRS: the dataset's was taken


def pixel_type(dtype: str, *, packed: bool = False, nbits: int | None = None) -> PixelType:
    """ArcGIS pixel type code of a numpy dtype name (packed data reads as float)."""
    if packed:
        return "F64" if dtype == "float64" else "F32"
    if dtype == "uint8" and nbits is not None and nbits in _NBITS_TYPES:
        return _NBITS_TYPES[nbits]
    return PIXEL_TYPES.get(dtype, "UNKNOWN")


def is_identity(transform: Affine) -> bool:
    """True for GDAL's default transform (no georeferencing)."""
    return bool(transform.almost_equals(Affine.identity()))


def compute_geo(
    ds: Any, path: str, dataset_crs: str | None, *, crs_override: str | None = None
) -> Geo:
    """Georeferencing of ``ds`` (RasterRejected when it is not georeferenced)."""
    transform: Affine = ds.transform
    assumed = ds.crs is None and crs_override is None and bool(dataset_crs)
    if assumed and not is_identity(transform):
        crs_override = key_of(dataset_crs or "")  # a geotransform without a CRS
    if (ds.crs is None and crs_override is None) or is_identity(transform):
        gcps = ds.gcps[0] if ds.gcps else []
        reason = (
            "not georeferenced: it has ground control points only (no geotransform)."
            if gcps
            else "not georeferenced: it has no coordinate reference system or geotransform."
        )
        if gcps:
            step = "Warp it to a regular grid first, e.g. `gdalwarp -t_srs EPSG:<n> in out.tif`."
        else:
            step = GEOREF_NEXT_STEP
        raise RasterRejected(path, reason, next_step=step)
    native = crs_override or crs_key(ds.crs)
    width, height = int(ds.width), int(ds.height)
    px, py = rectangle_ring(Extent(0.0, 0.0, float(width), float(height)))
    nx = transform.a * px + transform.b * py + transform.c
    ny = transform.d * px + transform.e * py + transform.f
    native_ring = [(float(a), float(b)) for a, b in zip(nx, ny, strict=True)]
    native_extent = ring_extent(native_ring)
    target = key_of(dataset_crs) if dataset_crs else native
    if same_crs(native, target):
        footprint = orient_clockwise(native_ring)
    else:
        footprint = transform_ring(native_extent, native, target)
    if not footprint:
        raise RasterRejected(
            path,
            "its extent cannot be expressed in the mosaic dataset's spatial reference.",
            next_step="Use a dataset whose spatial reference covers this raster's area.",
        )
    extent = ring_extent(footprint)
    cell_x = math.hypot(transform.a, transform.d)
    cell_y = math.hypot(transform.b, transform.e)
    low = _pixel_size_in(native, target, native_extent, extent, cell_x, cell_y)
    overviews = ds.overviews(1) if ds.count else []
    high = low * float(overviews[-1]) if overviews else low
    return Geo(native, native_extent, footprint, extent, cell_x, cell_y, low, high, assumed)


def _pixel_size_in(
    native: str, target: str, native_ext: Extent, ext: Extent, cell_x: float, cell_y: float
) -> float:
    """Cell size in target units: centre pixel transformed, or extent ratio (geo <-> proj)."""
    if same_crs(native, target):
        return (cell_x + cell_y) / 2.0
    ratio_size = _ratio_size(native_ext, ext, cell_x, cell_y)
    if crs_from_key(native).is_geographic != crs_from_key(target).is_geographic:
        return ratio_size
    cx, cy = native_ext.center
    xs = np.array([cx, cx + cell_x, cx])
    ys = np.array([cy, cy, cy + cell_y])
    tx, ty = transform_finite(native, target, xs, ys)
    if not (np.isfinite(tx).all() and np.isfinite(ty).all()):
        return ratio_size
    dx = math.hypot(tx[1] - tx[0], ty[1] - ty[0])
    dy = math.hypot(tx[2] - tx[0], ty[2] - ty[0])
    size = (dx + dy) / 2.0
    return size if size > 0 and math.isfinite(size) else ratio_size


def _ratio_size(native_ext: Extent, ext: Extent, cell_x: float, cell_y: float) -> float:
    rx = ext.width / native_ext.width if native_ext.width else 1.0
    ry = ext.height / native_ext.height if native_ext.height else 1.0
    return (cell_x * rx + cell_y * ry) / 2.0


def band_names(ds: Any, bands: tuple[int, ...]) -> tuple[str, ...]:
    """Band names from descriptions, colour interpretation (Red, Green, …) or Band_<n>."""
    names: list[str] = []
    for pos, b in enumerate(bands, start=1):
        desc = (ds.descriptions[b - 1] or "").strip()
        ci = ds.colorinterp[b - 1].name if ds.colorinterp else "undefined"
        if desc:
            names.append(desc)
        elif ci in ("red", "green", "blue"):
            names.append(ci.capitalize())
        else:
            names.append(f"Band_{pos}")
    seen: set[str] = set()
    out: list[str] = []
    for pos, name in enumerate(names, start=1):
        out.append(name if name not in seen else f"Band_{pos}")
        seen.add(name)
    return tuple(out)
