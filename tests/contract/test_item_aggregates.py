"""ItemStore aggregates: ids, extent, grouped statistics and distinct values."""

from __future__ import annotations

import math

import pytest

from livemosaic.core.models import Extent
from livemosaic.core.ports import FieldStatistic, ItemQuery
from livemosaic.core.where import parse_where
from livemosaic.errors import DatasetNotFound
from tests.contract.items import HOUR, dataset, item
from tests.contract.stores import StoreSet


def _fill(stores: StoreSet) -> list[int]:
    """Six items: ZOrder 1, 1, 2, 2, 2 and none; Tag a/b; one hour apart; 10-unit squares."""
    cat = stores.catalog
    cat.create_dataset(dataset())
    cats = [1, 1, 2, 2, 2, None]
    items = [
        item(
            n,
            x=10.0 * n,
            time=n * HOUR,
            attributes={"Tag": "a" if n % 2 else "b", **({"ZOrder": c} if c else {})},
        )
        for n, c in enumerate(cats)
    ]
    return list(cat.add_items("ds", items).added)


def test_ids_follow_the_order_and_page_of_find_items(stores: StoreSet) -> None:
    cat = stores.catalog
    ids = _fill(stores)
    assert cat.item_ids("ds", ItemQuery()) == ids
    query = ItemQuery(order_by=(("StdTime", False),), offset=1, limit=2)
    assert cat.item_ids("ds", query) == [it.id for it in cat.find_items("ds", query)]
    assert cat.item_ids("ds", query) == [ids[4], ids[3]]
    assert cat.item_ids("ds", ItemQuery(extent=Extent(1000, 1000, 2000, 2000))) == []


def test_the_extent_is_the_union_of_the_matching_items(stores: StoreSet) -> None:
    cat = stores.catalog
    _fill(stores)
    assert cat.item_extent("ds", ItemQuery()) == Extent(0, 0, 60, 10)
    assert cat.item_extent("ds", ItemQuery(time=(HOUR, 2 * HOUR))) == Extent(10, 0, 30, 10)
    assert cat.item_extent("ds", ItemQuery(limit=1, offset=3)) == Extent(0, 0, 60, 10)
    assert cat.item_extent("ds", ItemQuery(where=parse_where("Tag = 'none'"))) is None


STATS = (
    FieldStatistic("count", "ZOrder", "n"),
    FieldStatistic("min", "StdTime", "first"),
    FieldStatistic("max", "LowPS", "coarsest"),
    FieldStatistic("sum", "ZOrder", "total"),
    FieldStatistic("avg", "ZOrder", "mean"),
    FieldStatistic("stddev", "ZOrder", "sd"),
    FieldStatistic("var", "ZOrder", "var"),
    FieldStatistic("max", "Tag", "tag_max"),  # not a numeric field
    FieldStatistic("count", "Tag", "tags"),
)


def test_statistics_without_groups(stores: StoreSet) -> None:
    cat = stores.catalog
    _fill(stores)
    [row] = cat.item_statistics("ds", ItemQuery(), STATS)
    assert row["n"] == 5 and row["tags"] == 6 and row["tag_max"] is None
    assert row["first"] == 0 and row["coarsest"] == 1.0
    assert row["total"] == 8 and row["mean"] == pytest.approx(1.6)
    assert row["var"] == pytest.approx(0.3) and row["sd"] == pytest.approx(math.sqrt(0.3))
    [none] = cat.item_statistics("ds", ItemQuery(where=parse_where("Tag = 'x'")), STATS)
    assert none["n"] == 0 and none["total"] is None and none["sd"] is None


def test_statistics_by_group_are_ordered_and_paged(stores: StoreSet) -> None:
    cat = stores.catalog
    _fill(stores)
    stats = (FieldStatistic("count", "OBJECTID", "n"), FieldStatistic("var", "ZOrder", "v"))
    rows = cat.item_statistics("ds", ItemQuery(), stats, ("ZOrder",))
    assert [(r["ZOrder"], r["n"]) for r in rows] == [(None, 1), (1, 2), (2, 3)]
    assert rows[0]["v"] is None and rows[1]["v"] == 0.0 and rows[2]["v"] == 0.0
    two = cat.item_statistics("ds", ItemQuery(), stats, ("Tag", "ZOrder"))
    assert [(r["Tag"], r["ZOrder"], r["n"]) for r in two] == [
        ("a", None, 1),
        ("a", 1, 1),
        ("a", 2, 1),
        ("b", 1, 1),
        ("b", 2, 2),
    ]
    page = cat.item_statistics("ds", ItemQuery(offset=1, limit=1), stats, ("ZOrder",))
    assert [r["ZOrder"] for r in page] == [1]
    late = ItemQuery(time=(3 * HOUR, None))
    assert [r["n"] for r in cat.item_statistics("ds", late, stats, ("ZOrder",))] == [1, 2]


def test_distinct_values_are_ordered_and_paged(stores: StoreSet) -> None:
    cat = stores.catalog
    _fill(stores)
    assert cat.distinct_values("ds", ItemQuery(), ["Tag"]) == [("a",), ("b",)]
    assert cat.distinct_values("ds", ItemQuery(), ["ZOrder", "Tag"]) == [
        (None, "a"),
        (1, "a"),
        (1, "b"),
        (2, "a"),
        (2, "b"),
    ]
    desc = ItemQuery(order_by=(("Tag", False),), offset=1, limit=2)
    assert cat.distinct_values("ds", desc, ["ZOrder", "Tag"]) == [(2, "b"), (None, "a")]
    early = ItemQuery(time=(None, HOUR))
    assert cat.distinct_values("ds", early, ["ZOrder"]) == [(1,)]


def test_aggregates_name_an_unknown_dataset(stores: StoreSet) -> None:
    cat = stores.catalog
    for call in (
        lambda: cat.item_ids("nope", ItemQuery()),
        lambda: cat.item_extent("nope", ItemQuery()),
        lambda: cat.item_statistics("nope", ItemQuery(), STATS),
        lambda: cat.distinct_values("nope", ItemQuery(), ["Tag"]),
    ):
        with pytest.raises(DatasetNotFound):
            call()
