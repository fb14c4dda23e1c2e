"""Geographic extents that clients can draw: latitudes within ±90, longitudes of one Earth.

A global grid with coarse cells is published with its cell edges: a 90-degree GRIB grid
spans latitudes -135..135, a 2.5-degree GFS grid -91.25..91.25 and longitudes -1.25..358.75.
Clients that compute a view from such an extent get NaN. Extents and footprints in a
geographic spatial reference are therefore published clamped to the valid range, and the
two longitude conventions (-180..180 and 0..360) are treated as the same Earth:

* latitudes are clamped to [-90, 90];
* an extent 360 degrees wide or wider covers every longitude: -180..180;
* one that starts west of -180 or at 180 or beyond is shifted by 360 degrees; an extent in
  0..360 (the Pacific as 100..260) is valid as it is;
* one that would still reach past 360 crosses the antimeridian in a way no single envelope
  says: it is published as every longitude.

Only what is *published* is clamped (service extents, query extents and footprints, item
extents); catalog items keep the extents of their files, which reads rely on.
"""

from __future__ import annotations

from collections.abc import Sequence

from livemosaic.core.models import Extent

LATITUDE_LIMIT = 90.0
LONGITUDE_MIN = -180.0
LONGITUDE_MAX = 360.0  # 0..360 grids are the same Earth as -180..180
FULL_TURN = 360.0

Point = tuple[float, float]


def _longitudes(xmin: float, xmax: float) -> tuple[float, float, float]:
    """(xmin, xmax, shift) of a longitude range on one Earth; shift is what was added."""
    if xmax - xmin >= FULL_TURN:
        return LONGITUDE_MIN, -LONGITUDE_MIN, 0.0
    shift = 0.0
    if xmin < LONGITUDE_MIN:
        shift = FULL_TURN
    elif xmin >= -LONGITUDE_MIN:
        shift = -FULL_TURN
    xmin, xmax = xmin + shift, xmax + shift
    if xmax > LONGITUDE_MAX:
        return LONGITUDE_MIN, -LONGITUDE_MIN, 0.0
    return xmin, xmax, shift


def _latitude(y: float) -> float:
    return min(LATITUDE_LIMIT, max(-LATITUDE_LIMIT, y))


def clamp_geographic(extent: Extent) -> Extent:
    """An extent in degrees within the valid range (see the module docstring)."""
    xmin, xmax, _ = _longitudes(extent.xmin, extent.xmax)
    return Extent(xmin, _latitude(extent.ymin), xmax, _latitude(extent.ymax))


def clamp_geographic_ring(ring: Sequence[Point]) -> list[Point]:
    """A footprint ring in degrees within the valid range, moved as its extent is.

    A ring covering every longitude becomes the rectangle of its clamped extent.
    """
    if not ring:
        return []
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    box = Extent(min(xs), min(ys), max(xs), max(ys))
    xmin, xmax, shift = _longitudes(box.xmin, box.xmax)
    if xmax - xmin >= FULL_TURN:
        ymin, ymax = _latitude(box.ymin), _latitude(box.ymax)
        return [(xmin, ymin), (xmin, ymax), (xmax, ymax), (xmax, ymin), (xmin, ymin)]
    return [(x + shift, _latitude(y)) for x, y in ring]


__all__ = [
    "LATITUDE_LIMIT",
    "LONGITUDE_MAX",
    "LONGITUDE_MIN",
    "clamp_geographic",
    "clamp_geographic_ring",
]
