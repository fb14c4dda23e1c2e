"""Geographic extents clamped to what clients can draw (core.geographic)."""

from __future__ import annotations

import pytest

from livemosaic.core.geographic import clamp_geographic, clamp_geographic_ring
from livemosaic.core.models import Extent


@pytest.mark.parametrize(
    ("given", "published"),
    [
        # a 90-degree grid: cell edges past the poles (in 0..360, and as GDAL's GRIB driver
        # recentres it: what lies west of -180 cannot be drawn there and is cut off)
        (Extent(-45, -135, 315, 135), Extent(-45, -90, 315, 90)),
        (Extent(-225, -135, 135, 135), Extent(-180, -90, 135, 90)),
        # a 2.5-degree GFS grid in 0..360 and recentred
        (Extent(-1.25, -91.25, 358.75, 91.25), Extent(-1.25, -90, 358.75, 90)),
        (Extent(-181.25, -91.25, 178.75, 91.25), Extent(-180, -90, 178.75, 90)),
        # regional extents: valid ones unchanged (0..360 too), others moved onto one Earth
        (Extent(-10, 40, 20, 60), Extent(-10, 40, 20, 60)),
        (Extent(100, -10, 260, 10), Extent(100, -10, 260, 10)),
        (Extent(-300, 0, -200, 10), Extent(60, 0, 160, 10)),
        (Extent(400, 0, 410, 10), Extent(40, 0, 50, 10)),
        (Extent(0, 80, 10, 95), Extent(0, 80, 10, 90)),
        # both conventions in one dataset: the Earth once, from its western edge
        (Extent(-180, -90, 360, 90), Extent(-180, -90, 180, 90)),
    ],
)
def test_clamp_geographic(given: Extent, published: Extent) -> None:
    assert clamp_geographic(given) == published


def test_rings_follow_their_extent() -> None:
    grid = [(-45.0, -135.0), (-45.0, 135.0), (315.0, 135.0), (315.0, -135.0), (-45.0, -135.0)]
    assert clamp_geographic_ring(grid) == [(-45, -90), (-45, 90), (315, 90), (315, -90), (-45, -90)]
    west = [(-300.0, 0.0), (-300.0, 95.0), (-200.0, 95.0), (-200.0, 0.0), (-300.0, 0.0)]
    assert clamp_geographic_ring(west) == [(60, 0), (60, 90), (160, 90), (160, 0), (60, 0)]
    assert clamp_geographic_ring([]) == []
