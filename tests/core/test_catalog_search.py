"""CatalogSearch: store aggregates without a geometry, footprint tests only within its box."""

from __future__ import annotations

from livemosaic.core.catalog_search import CatalogSearch, CatalogSelection
from livemosaic.core.models import Extent, Geometry, MosaicDataset
from livemosaic.core.ports import FieldStatistic, ItemQuery
from tests.core.fake_stores import InMemoryCatalog
from tests.core.fakes import make_item

TRIANGLE = ((0.0, 0.0), (0.0, 10.0), (10.0, 0.0), (0.0, 0.0))


def catalog() -> InMemoryCatalog:
    """Three 10 x 10 items: a triangle at the origin, a square next to it, one far away."""
    cat = InMemoryCatalog()
    cat.create_dataset(MosaicDataset("ds", "EPSG:3857"))
    cat.add(
        "ds",
        [
            make_item(1, 0, 10, 10, 10, footprint=TRIANGLE, attributes={"Tag": "a"}),
            make_item(2, 10, 10, 10, 10, attributes={"Tag": "b"}),
            make_item(3, 1000, 1010, 10, 10, attributes={"Tag": "a"}),
        ],
    )
    return cat


def test_without_a_geometry_no_item_is_loaded() -> None:
    cat = catalog()
    search = CatalogSearch(cat)
    sel = CatalogSelection("ds", ItemQuery())
    assert search.count(sel) == 3
    assert search.ids(sel, 1, 1) == [2]
    assert search.extent(sel) == (Extent(0, 0, 1010, 1010), 3)
    stats = search.statistics(sel, [FieldStatistic("count", "OBJECTID", "n")], ["Tag"])
    assert stats == [{"Tag": "a", "n": 2}, {"Tag": "b", "n": 1}]
    assert search.distinct(sel, ["Tag"]) == [("a",), ("b",)]
    assert cat.queries == []  # everything was answered by the store's aggregates


def test_a_geometry_tests_footprints_within_its_box_only() -> None:
    cat = catalog()
    search = CatalogSearch(cat)
    corner = Geometry("point", (((8.0, 8.0),),))  # in the triangle's box, not in it
    edge = Geometry("point", (((5.0, 5.0),),))  # on the hypotenuse
    assert search.count(CatalogSelection("ds", ItemQuery(), corner)) == 0
    assert search.ids(CatalogSelection("ds", ItemQuery(), edge)) == [1]
    box = Geometry.from_extent(Extent(5, 5, 15, 15))
    sel = CatalogSelection("ds", ItemQuery(order_by=(("OBJECTID", False),)), box)
    assert [it.id for it in search.find(sel)] == [2, 1]
    assert search.extent(sel) == (Extent(0, 0, 20, 10), 2)
    assert search.distinct(sel, ["Tag"], 0, 1) == [("a",)]
    assert all(q.extent is not None and q.extent.xmax <= 15 for q in cat.queries if q.extent)
    assert (
        search.count(CatalogSelection("ds", ItemQuery(extent=Extent(500, 500, 600, 600)), box)) == 0
    )
