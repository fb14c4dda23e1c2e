"""The PostgreSQL catalog store: the SQLite store's tests, run against PostgreSQL, and what
only PostgreSQL has (the GiST plan, several writers)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import psycopg
import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.catalog.postgres import PostgresCatalog
from livemosaic.core.models import Extent, MosaicDataset
from livemosaic.core.ports import ItemQuery
from livemosaic.errors import LimitExceeded
from tests.postgres import pg_database, pg_url

from .items import DAY, make_item, random_item
from .test_sqlite_catalog import *  # noqa: F403  (the same behaviour, another database)
from .test_sqlite_catalog import DS, T0, ids

__all__ = ["pg_database", "pg_url"]


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresCatalog]:
    stores = open_stores(pg_url)
    assert isinstance(stores.catalog, PostgresCatalog)
    stores.catalog.create_dataset(MosaicDataset(DS, "EPSG:3857"))
    yield stores.catalog
    stores.close()


# SQLite's own: its file, its planner's words
del test_oversized_value_is_a_clear_limit_error_without_the_file_path  # noqa: F821
del test_query_plans_use_rtree_and_indexes  # noqa: F821
del test_summary_bounds_use_indexes  # noqa: F821


def test_oversized_value_is_a_clear_limit_error(store: PostgresCatalog) -> None:
    with pytest.raises(LimitExceeded, match="64-bit") as info:
        store.add_items(DS, [replace(make_item(1), file_size=2**70)])
    assert info.value.code == 400
    assert store.summary(DS).item_count == 0


def _analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def test_query_plans_use_the_gist_and_time_indexes(store: PostgresCatalog, pg_url: str) -> None:
    rng = random.Random(3)
    store.add_items(DS, [random_item(rng, i) for i in range(3000)])
    _analyze(pg_url)
    plan = "\n".join(store.explain(DS, ItemQuery(extent=Extent(0, 0, 10, 10))))
    assert "items_space_time" in plan and "Seq Scan" not in plan, plan
    window = ItemQuery(extent=Extent(0, 0, 10, 10), time=(T0, T0 + DAY))
    plan = "\n".join(store.explain(DS, window))
    assert "items_space_time" in plan and "trange &&" in plan, plan
    assert "Index Cond: ((dataset_id =" in plan, plan  # the dataset narrows the GiST too
    plan = "\n".join(store.explain(DS, ItemQuery(time=(T0, T0 + 2 * DAY))))
    assert ("items_time" in plan or "items_space_time" in plan) and "Seq Scan" not in plan, plan
    plan = "\n".join(store.explain(DS, ItemQuery(object_ids=(1, 2, 3))))
    assert "item_rows_pkey" in plan, plan


@dataclass(frozen=True)
class Stat:
    kind: str
    field: str
    out_name: str


def test_aggregates_are_answered_in_sql(store: PostgresCatalog) -> None:
    items = [make_item(i, attributes={"ZOrder": i % 3, "Tag": f"t{i % 2}"}) for i in range(6)]
    store.add_items(DS, items)
    everything = ItemQuery(order_by=(("OBJECTID", False),))
    assert store.item_ids(DS, everything) == sorted(ids(store.find_items(DS, everything)))[::-1]
    assert store.item_extent(DS, ItemQuery()) == store.summary(DS).extent
    west = ItemQuery(extent=Extent(0, 0, 12, 10))
    found = store.find_items(DS, west)
    assert 0 < len(found) < len(items)
    assert store.item_extent(DS, west) == Extent(
        min(i.extent.xmin for i in found),
        min(i.extent.ymin for i in found),
        max(i.extent.xmax for i in found),
        max(i.extent.ymax for i in found),
    )
    stats = [
        Stat("count", "ZOrder", "n"),
        Stat("sum", "ZOrder", "total"),
        Stat("avg", "ZOrder", "mean"),
        Stat("stddev", "ZOrder", "sd"),
        Stat("max", "Tag", "tag"),
    ]
    [row] = store.item_statistics(DS, ItemQuery(), stats)
    assert row == {"n": 6, "total": 6, "mean": 1.0, "sd": pytest.approx(0.894427191), "tag": None}
    assert isinstance(row["total"], int) and isinstance(row["mean"], float)
    groups = store.item_statistics(DS, ItemQuery(), [Stat("count", "OBJECTID", "n")], ["Tag"])
    assert groups == [{"Tag": "t0", "n": 3}, {"Tag": "t1", "n": 3}]
    assert store.distinct_values(DS, ItemQuery(order_by=(("ZOrder", False),)), ["ZOrder"]) == [
        (2,),
        (1,),
        (0,),
    ]
