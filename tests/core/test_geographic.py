"""Geographic extents clamped to what clients can draw (core.geographic)."""

from __future__ import annotations

import pytest

from livemosaic.core.geographic import clamp_geographic, clamp_geographic_ring
from livemosaic.core.models import Extent


@pytest.mark.parametrize(
    ("given", "published"),
    [
        # a 90-degree GRIB grid: cell edges past the poles
        (Extent(-45, -135, 315, 135), Extent(-180, -90, 180, 90)),
        (Extent(-225, -135, 135, 135), Extent(-180, -90, 180, 90)),
        # a 2.5-degree GFS grid in 0..360 and as GDAL's GRIB driver recentres it
        (Extent(-1.25, -91.25, 358.75, 91.25), Extent(-180, -90, 180, 90)),
        (Extent(-181.25, -91.25, 178.75, 91.25), Extent(-180, -90, 180, 90)),
        # regional extents: valid ones unchanged, 0..360 kept, others moved onto one Earth
        (Extent(-10, 40, 20, 60), Extent(-10, 40, 20, 60)),
        (Extent(100, -10, 260, 10), Extent(100, -10, 260, 10)),
        (Extent(-225, 0, -100, 10), Extent(135, 0, 260, 10)),
        (Extent(400, 0, 410, 10), Extent(40, 0, 50, 10)),
        (Extent(-200, 0, 100, 10), Extent(-180, 0, 180, 10)),
        (Extent(0, 80, 10, 95), Extent(0, 80, 10, 90)),
    ],
)
def test_clamp_geographic(given: Extent, published: Extent) -> None:
    assert clamp_geographic(given) == published


def test_rings_follow_their_extent() -> None:
    world = [(-45.0, -135.0), (-45.0, 135.0), (315.0, 135.0), (315.0, -135.0), (-45.0, -135.0)]
    ring = clamp_geographic_ring(world)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert (min(xs), min(ys), max(xs), max(ys)) == (-180, -90, 180, 90)
    west = [(-225.0, 0.0), (-225.0, 95.0), (-100.0, 95.0), (-100.0, 0.0), (-225.0, 0.0)]
    assert clamp_geographic_ring(west) == [(135, 0), (135, 90), (260, 90), (260, 0), (135, 0)]
    assert clamp_geographic_ring([]) == []
