"""Plane geometry: one point-in-polygon for the catalog query, identify and mosaic rules."""

from __future__ import annotations

from livemosaic.core.models import Geometry
from livemosaic.core.mosaic_rules import item_contains_point
from livemosaic.core.planar import intersects_footprint, point_in_polygon, point_in_ring
from tests.core.fakes import make_item

TRIANGLE = ((0.0, 0.0), (0.0, 10.0), (10.0, 0.0), (0.0, 0.0))


def test_points_on_an_edge_are_inside_everywhere() -> None:
    item = make_item(1, 0, 10, 10, 10, footprint=TRIANGLE)
    for x, y in ((5.0, 5.0), (0.0, 4.0), (3.0, 0.0), (0.0, 0.0)):  # hypotenuse, legs, vertex
        assert point_in_ring(x, y, TRIANGLE)
        assert intersects_footprint(Geometry("point", (((x, y),),)), TRIANGLE)
        assert item_contains_point(item, x, y)  # it disagreed on the hypotenuse
    assert not item_contains_point(item, 5.01, 5.01)
    assert not intersects_footprint(Geometry("point", (((5.01, 5.01),),)), TRIANGLE)


def test_holes_are_outside() -> None:
    outer = ((0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0), (0.0, 0.0))
    hole = ((4.0, 4.0), (6.0, 4.0), (6.0, 6.0), (4.0, 6.0), (4.0, 4.0))
    assert point_in_polygon(2, 2, [outer, hole])
    assert not point_in_polygon(5, 5, [outer, hole])
