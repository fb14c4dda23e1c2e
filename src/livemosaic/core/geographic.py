"""Geographic extents that clients can draw: latitudes within ±90, longitudes of one Earth.

A global grid with coarse cells is published with its cell edges: a 90-degree GRIB grid
spans latitudes -135..135, a 2.5-degree GFS grid -91.25..91.25 and longitudes -1.25..358.75.
Clients that compute a view from such an extent get NaN. Extents and footprints in a
geographic spatial reference are therefore published within the valid range, where the two
longitude conventions, -180..180 and 0..360, are the same Earth:

* latitudes are clamped to [-90, 90];
* longitudes may run from -180 to 360: an extent in 0..360 (a GFS grid, the Pacific as
  100..260) is valid as it is and is drawn where it lies; one entirely west of -180 or east of
  360 is moved by 360 degrees; what still lies outside [-180, 360] is cut off;
* an extent is at most 360 degrees wide (a dataset mixing both conventions covers the Earth
  once, from its western edge).

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
    shift = 0.0
    if xmax <= LONGITUDE_MIN:
        shift = FULL_TURN
    elif xmin >= LONGITUDE_MAX:
        shift = -FULL_TURN
    xmin = max(xmin + shift, LONGITUDE_MIN)
    xmax = min(xmax + shift, LONGITUDE_MAX)
    return xmin, min(xmax, xmin + FULL_TURN), shift


def _latitude(y: float) -> float:
    return min(LATITUDE_LIMIT, max(-LATITUDE_LIMIT, y))


def clamp_geographic(extent: Extent) -> Extent:
    """An extent in degrees within the valid range (see the module docstring)."""
    xmin, xmax, _ = _longitudes(extent.xmin, extent.xmax)
    return Extent(xmin, _latitude(extent.ymin), xmax, _latitude(extent.ymax))


def clamp_geographic_ring(ring: Sequence[Point]) -> list[Point]:
    """A footprint ring in degrees within the valid range, moved and cut as its extent is."""
    if not ring:
        return []
    xmin, xmax, shift = _longitudes(min(p[0] for p in ring), max(p[0] for p in ring))
    return [(min(max(x + shift, xmin), xmax), _latitude(y)) for x, y in ring]


WRAP_SHIFTS = (0.0, FULL_TURN, -FULL_TURN)


def wrap_shifts(item: Extent, request: Extent) -> list[float]:
    """The longitude shifts (0, +360, -360) that bring ``request`` onto ``item``, both in
    degrees: a request in -180..180 over a grid stored in 0..360 (or the reverse) draws the
    part of the grid that lies on the same Earth. Shifted requests must not overlap each other
    (a request at most 360 degrees wide), so each place is drawn once."""
    return [
        shift
        for shift in WRAP_SHIFTS
        if Extent(
            request.xmin + shift, request.ymin, request.xmax + shift, request.ymax
        ).intersects(item)
    ]


def shifted(extent: Extent, shift: float) -> Extent:
    """``extent`` moved by ``shift`` degrees of longitude."""
    return Extent(extent.xmin + shift, extent.ymin, extent.xmax + shift, extent.ymax)


__all__ = [
    "LATITUDE_LIMIT",
    "LONGITUDE_MAX",
    "LONGITUDE_MIN",
    "clamp_geographic",
    "clamp_geographic_ring",
    "shifted",
    "wrap_shifts",
]
