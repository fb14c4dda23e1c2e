"""Spatial references and coordinate transformation with rasterio (GDAL/PROJ).

CRS keys (see :mod:`.crs`) are ``EPSG:n``, ``ESRI:n`` or WKT. Axis order is always x = longitude/easting,
y = latitude/northing (GDAL's traditional GIS order, which rasterio uses).

Transformations keep finite points only: a point PROJ cannot transform (beyond a
geostationary disk, the poles in Mercator) is dropped instead of failing the whole call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from rasterio.errors import CRSError
from rasterio.warp import transform as _rio_transform

from livemosaic.adapters.raster.crs import (
    authority,
    crs_from_key,
    esri_range,
    key_of,
    quiet_env,
    same_crs,
)
from livemosaic.core.models import WEB_MERCATOR_ALIASES, Extent, SpatialRef
from livemosaic.errors import InvalidParameter

METRES_PER_DEGREE = 111319.49079327357
EDGE_POINTS = 21  # points per edge when densifying rectangles
RAYS = 96  # rays from the centre when an outline has to be found inside a rectangle
BISECTIONS = 18  # bisection steps along each ray
_MERCATOR_MAX_LAT = 85.0511287798066

FloatArray = npt.NDArray[np.float64]


def transform_finite(
    src: str, dst: str, xs: Sequence[float] | FloatArray, ys: Sequence[float] | FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Transform points; points PROJ cannot transform come back as +inf."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.size == 0 or same_crs(src, dst):
        return x.copy(), y.copy()
    scrs, dcrs = crs_from_key(src), crs_from_key(dst)
    out_x = np.full(x.shape, np.inf)
    out_y = np.full(y.shape, np.inf)
    ok = np.isfinite(x) & np.isfinite(y)
    idx = np.flatnonzero(ok)
    if key_of(dst) == "EPSG:3857" and scrs.is_geographic:
        y = np.clip(y, -_MERCATOR_MAX_LAT, _MERCATOR_MAX_LAT)
    stack = [idx]
    while stack:
        part = stack.pop()
        if part.size == 0:
            continue
        try:
            with quiet_env():
                tx, ty = _rio_transform(scrs, dcrs, x[part].tolist(), y[part].tolist())
        except Exception:  # PROJ fails the whole call when any point fails
            if part.size > 1:
                half = part.size // 2
                stack.extend((part[:half], part[half:]))
            continue
        out_x[part] = tx
        out_y[part] = ty
    bad = ~(np.isfinite(out_x) & np.isfinite(out_y))
    out_x[bad] = np.inf
    out_y[bad] = np.inf
    return out_x, out_y


def rectangle_ring(ext: Extent, n: int = EDGE_POINTS) -> tuple[FloatArray, FloatArray]:
    """A closed clockwise ring along the rectangle's edges, ``n`` points per edge."""
    t = np.linspace(0.0, 1.0, n)[:-1]
    xs = np.concatenate(
        [
            np.full(t.size, ext.xmin),
            ext.xmin + t * ext.width,
            np.full(t.size, ext.xmax),
            ext.xmax - t * ext.width,
            [ext.xmin],
        ]
    )
    ys = np.concatenate(
        [
            ext.ymin + t * ext.height,
            np.full(t.size, ext.ymax),
            ext.ymax - t * ext.height,
            np.full(t.size, ext.ymin),
            [ext.ymin],
        ]
    )
    return xs, ys


def orient_clockwise(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Close a ring and orient it clockwise (ArcGIS outer ring)."""
    if not points:
        return ()
    if points[0] != points[-1]:
        points = [*points, points[0]]
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        area += x0 * y1 - x1 * y0
    if area > 0:  # counter-clockwise
        points = points[::-1]
    return tuple(points)


def _ray_outline(ext: Extent, src: str, dst: str) -> list[tuple[float, float]]:
    """Outline of the transformable part of a rectangle, seen from its centre.

    Rays go from the centre to the rectangle's edge; where the edge point cannot be
    transformed, the last transformable point along the ray is found by bisection.
    """
    cx, cy = ext.center
    ctx, _ = transform_finite(src, dst, [cx], [cy])
    if not np.isfinite(ctx[0]):
        return []
    angles = np.linspace(0.0, 2.0 * math.pi, RAYS, endpoint=False)
    cos, sin = np.cos(angles), np.sin(angles)
    with np.errstate(divide="ignore"):
        reach = np.minimum(
            np.where(cos != 0, ext.width / 2.0 / np.abs(cos), np.inf),
            np.where(sin != 0, ext.height / 2.0 / np.abs(sin), np.inf),
        )
    lo = np.zeros(RAYS)
    hi = np.ones(RAYS)
    tx, ty = transform_finite(src, dst, cx + reach * cos, cy + reach * sin)
    best_x, best_y = tx.copy(), ty.copy()
    todo = ~np.isfinite(tx)
    for _ in range(BISECTIONS):
        if not todo.any():
            break
        mid = (lo + hi) / 2.0
        idx = np.flatnonzero(todo)
        mx, my = transform_finite(
            src, dst, cx + mid[idx] * reach[idx] * cos[idx], cy + mid[idx] * reach[idx] * sin[idx]
        )
        ok = np.isfinite(mx)
        lo[idx[ok]] = mid[idx[ok]]
        best_x[idx[ok]], best_y[idx[ok]] = mx[ok], my[ok]
        hi[idx[~ok]] = mid[idx[~ok]]
    keep = np.isfinite(best_x)
    return [(float(a), float(b)) for a, b in zip(best_x[keep], best_y[keep], strict=True)]


def transform_ring(ext: Extent, src: str, dst: str) -> tuple[tuple[float, float], ...]:
    """A densified rectangle transformed into ``dst`` as a clockwise closed ring.

    When some edge points cannot be transformed, the ring follows the outline of the
    transformable area instead (see :func:`_ray_outline`). Empty when nothing is
    transformable (or when the rectangle's centre is not).
    """
    xs, ys = rectangle_ring(ext)
    if same_crs(src, dst):
        return orient_clockwise([(float(a), float(b)) for a, b in zip(xs, ys, strict=True)])
    tx, ty = transform_finite(src, dst, xs, ys)
    if bool(np.isfinite(tx).all()):
        pts = [(float(a), float(b)) for a, b in zip(tx, ty, strict=True)]
    else:
        pts = _ray_outline(ext, src, dst)
    if len(pts) < 3:
        return ()
    return orient_clockwise(pts)


def ring_extent(ring: Sequence[tuple[float, float]]) -> Extent:
    """Bounding box of a ring."""
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    return Extent(min(xs), min(ys), max(xs), max(ys))


@lru_cache(maxsize=256)
def _describe(crs: str) -> SpatialRef:
    """The spatial reference of a CRS key (see ``RasterioProjector.describe``)."""
    try:
        obj = crs_from_key(crs)
    except CRSError as exc:
        raise InvalidParameter("spatialReference", f"unknown CRS ({exc}).") from exc
    with quiet_env():
        code = obj.to_epsg()
        auth = authority(obj)
        if auth is not None and auth[0] in ("ESRI", "EPSG"):
            return SpatialRef.from_epsg(auth[1])
        if code is not None:
            return SpatialRef.from_epsg(code)
        try:
            wkt = obj.to_wkt(version="WKT1_ESRI")
        except CRSError:
            wkt = obj.to_wkt()
    return SpatialRef(wkt=str(wkt))


class RasterioProjector:
    """Implements ``core.ports.Projector`` with rasterio's CRS and PROJ transformations."""

    def describe(self, crs: str) -> SpatialRef:
        """The ArcGIS spatial reference of a CRS key: wkid when one exists, else WKT.

        Cached: identifying a custom WKT against the EPSG database costs ~0.5 s, and every
        refresh describes its dataset's CRS.
        """
        return _describe(crs)

    def validate(self, sr: SpatialRef) -> str:
        """The CRS key of a client spatial reference; InvalidParameter if unknown."""
        accepted = "a wkid such as 4326, 3857/102100 or 54030, or {'wkt': '...'}"
        code = sr.epsg
        if code is not None:
            if code in WEB_MERCATOR_ALIASES:
                return "EPSG:3857"
            order = ("ESRI", "EPSG") if esri_range(code) else ("EPSG", "ESRI")
            for auth in order:
                try:
                    return key_of(f"{auth}:{code}")
                except CRSError:
                    continue
            raise InvalidParameter(
                "spatialReference",
                f"wkid {code} is not a known spatial reference.",
                accepted=accepted,
            )
        if sr.wkt:
            try:
                return key_of(sr.wkt)
            except CRSError as exc:
                raise InvalidParameter(
                    "spatialReference", f"the WKT cannot be read ({exc}).", accepted=accepted
                ) from exc
        raise InvalidParameter("spatialReference", "neither wkid nor wkt given.", accepted=accepted)

    def transform_extent(self, extent: Extent, src: str, dst: str) -> Extent:
        """Bounding box of a densified extent transformed from src to dst (finite points)."""
        if same_crs(src, dst):
            return extent
        ring = transform_ring(extent, src, dst)
        if not ring:
            raise InvalidParameter(
                "extent",
                f"no part of the extent {extent} can be expressed in the target spatial reference.",
            )
        return ring_extent(ring)

    def transform_points(
        self, xs: Sequence[float], ys: Sequence[float], src: str, dst: str
    ) -> tuple[list[float], list[float]]:
        """Transform coordinates (infinite where undefined)."""
        tx, ty = transform_finite(src, dst, xs, ys)
        return [float(v) for v in tx], [float(v) for v in ty]

    def is_geographic(self, crs: str) -> bool:
        """True for a CRS in degrees of longitude and latitude."""
        return bool(crs_from_key(crs).is_geographic)

    def meters_per_unit(self, crs: str) -> float:
        """Ground metres of one unit of a CRS (111319.49 for degrees)."""
        obj = crs_from_key(crs)
        if obj.is_geographic:
            return METRES_PER_DEGREE
        try:
            factor = obj.linear_units_factor[1]
        except CRSError:
            return 1.0
        return float(factor) if factor and math.isfinite(factor) else 1.0
