"""The SQLite catalog store against real database files."""

from __future__ import annotations

import math
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.catalog.sqlwhere import COLUMNS
from livemosaic.adapters.catalog.summary import BOUNDS_SQL, widest_pixel_type
from livemosaic.core.fields import CATALOG_FIELDS, item_attributes
from livemosaic.core.models import (
    BandStats,
    DatasetSummary,
    Extent,
    MosaicDataset,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
)
from livemosaic.core.ports import DimensionFilter, ItemQuery, RemoveFilter
from livemosaic.core.where import evaluate, parse_where
from livemosaic.errors import (
    AlreadyExists,
    DatasetNotFound,
    InvalidParameter,
    ItemNotFound,
    LimitExceeded,
    RasterRejected,
    ServiceNotFound,
    StoreError,
)

from .items import DAY, make_item, random_item

DS = "Ocean"
T0 = 1_700_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteCatalog]:
    s = SqliteCatalog(tmp_path / "catalog.db")
    s.create_dataset(MosaicDataset(DS, "EPSG:3857"))
    yield s
    s.close()


def ids(items: Sequence[RasterItem]) -> list[int]:
    return [it.id for it in items if it.id is not None]


def strip_identity(item: RasterItem) -> RasterItem:
    return replace(item, id=None, date_added=None)


# -- opening ---------------------------------------------------------------------------


def test_open_catalog_sqlite_creates_parent_folders(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "catalog.db"
    store = open_catalog(f"sqlite://{db}")
    try:
        assert isinstance(store, SqliteCatalog)
        assert db.is_file()
        store.create_dataset(MosaicDataset("x", ""))
        assert [d.name for d in store.list_datasets()] == ["x"]
    finally:
        store.close()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://relative.db", "sqlite:"])
def test_open_catalog_rejects_non_file_sqlite_urls(url: str) -> None:
    with pytest.raises(InvalidParameter, match="catalog_url"):
        open_catalog(url)


def test_open_catalog_postgres_url_that_cannot_be_reached_says_so() -> None:
    with pytest.raises(StoreError, match="cannot be opened") as info:
        open_catalog("postgresql://nobody:secret@127.0.0.1:1/livemosaic")
    assert "secret" not in str(info.value)


def test_open_catalog_unknown_scheme() -> None:
    with pytest.raises(InvalidParameter, match="unknown scheme 'mysql'"):
        open_catalog("mysql://localhost/x")


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    SqliteCatalog(db).close()
    again = SqliteCatalog(db)
    again.close()
    with sqlite3.connect(db) as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert versions == [
        (1, "initial"),
        (2, "jobs_users"),
        (3, "ingest_journal"),
        (4, "rtree_time"),
        (5, "signin_attempts"),
        (6, "time_field"),
    ]
    assert again.schema_version == 6
    assert mode == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    SqliteCatalog(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteCatalog(db)


def test_oversized_value_is_a_clear_limit_error_without_the_file_path(
    store: SqliteCatalog,
) -> None:
    with pytest.raises(LimitExceeded, match="64-bit") as info:
        store.add_items(DS, [replace(make_item(1), file_size=2**70)])
    assert info.value.code == 400
    assert str(store.path) not in str(info.value)
    assert store.summary(DS).item_count == 0


def test_database_errors_do_not_name_the_file(tmp_path: Path) -> None:
    db = tmp_path / "cat.db"
    catalog = SqliteCatalog(db)
    catalog.close()
    with pytest.raises(StoreError) as info:
        catalog.list_datasets()
    assert str(tmp_path) not in str(info.value) and "cat.db" not in str(info.value)


def test_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        SqliteCatalog(db)
    assert info.value.next_step


def test_every_catalog_field_has_a_column() -> None:
    assert set(COLUMNS) == {f.name for f in CATALOG_FIELDS}


# -- datasets --------------------------------------------------------------------------


def test_dataset_names_are_case_insensitive(store: SqliteCatalog) -> None:
    assert store.get_dataset("ocean").name == DS
    with pytest.raises(AlreadyExists, match="exists already"):
        store.create_dataset(MosaicDataset("OCEAN", ""))


def test_missing_dataset_says_how_to_create_it(store: SqliteCatalog) -> None:
    with pytest.raises(DatasetNotFound) as info:
        store.get_dataset("land")
    assert "livemosaic dataset create land" in str(info.value)
    with pytest.raises(DatasetNotFound):
        store.find_items("land", ItemQuery())
    with pytest.raises(DatasetNotFound):
        store.add_items("land", [make_item(1)])


def test_update_dataset_crs_only_while_empty(store: SqliteCatalog) -> None:
    ds = store.get_dataset(DS)
    changed = store.update_dataset(replace(ds, crs="EPSG:4326", description="d"))
    assert changed.crs == "EPSG:4326" and changed.id == ds.id
    assert store.get_dataset(DS).description == "d"
    store.add_items(DS, [make_item(1)])
    with pytest.raises(InvalidParameter, match="only change while it is empty"):
        store.update_dataset(replace(changed, crs="EPSG:3857"))
    renamed = store.update_dataset(replace(changed, name="Sea", time_pattern="x"))
    assert store.get_dataset("sea").time_pattern == "x"
    assert renamed.name == "Sea"
    assert store.summary("Sea").item_count == 1


def test_delete_dataset_removes_everything(store: SqliteCatalog) -> None:
    store.create_dataset(MosaicDataset("Other", ""))
    store.add_items(DS, [make_item(i) for i in range(5)])
    store.add_items("Other", [make_item(i, path=f"/o/{i}.tif") for i in range(3)])
    store.delete_dataset(DS)
    with pytest.raises(DatasetNotFound):
        store.summary(DS)
    assert [d.name for d in store.list_datasets()] == ["Other"]
    assert store.count_items("Other", ItemQuery(extent=Extent(-1e9, -1e9, 1e9, 1e9))) == 3
    store.create_dataset(MosaicDataset(DS, ""))
    assert store.summary(DS).item_count == 0
    assert store.find_items(DS, ItemQuery(extent=Extent(-1e9, -1e9, 1e9, 1e9))) == []
    assert [h.operation for h in store.history(DS)] == ["create"]


def test_delete_dataset_refuses_while_published(store: SqliteCatalog) -> None:
    store.save_service(ServiceDefinition("sst", DS, folder="ocean"), create=True)
    with pytest.raises(InvalidParameter, match="ocean/sst"):
        store.delete_dataset(DS)
    with pytest.raises(InvalidParameter, match="cannot be renamed"):
        store.update_dataset(replace(store.get_dataset(DS), name="Sea"))
    store.update_dataset(replace(store.get_dataset(DS), name="OCEAN"))  # case only: allowed
    assert store.get_service("ocean", "sst").dataset == DS
    store.delete_service("ocean", "sst")
    store.delete_dataset(DS)


# -- adding, idempotency, replacement --------------------------------------------------


def test_add_and_read_back_items_exactly(store: SqliteCatalog) -> None:
    item = make_item(
        3,
        time=T0,
        end_time=T0 + DAY,
        variable="temp",
        dimensions={"StdZ": -10.0, "level": 2.0},
        attributes={"unit": "K", "Tag": "MS", "list": [1, 2]},
        nodata=float("nan"),
        band_count=3,
    )
    result = store.add_items(DS, [item])
    assert len(result.added) == 1 and not result.skipped_paths and not result.replaced_paths
    got = store.get_item(DS, result.added[0])
    assert got.id == result.added[0] and got.date_added is not None
    assert got.nodata is not None and math.isnan(got.nodata)
    assert strip_identity(replace(got, nodata=None)) == replace(item, nodata=None)
    attrs = item_attributes(got)
    assert attrs["Tag"] == "MS" and attrs["Dimensions"] == "StdTime,StdZ,level"


def test_add_is_idempotent_per_path_size_and_mtime(store: SqliteCatalog) -> None:
    first = store.add_items(DS, [make_item(1), make_item(2)])
    assert len(first.added) == 2
    version = store.summary(DS).version
    again = store.add_items(DS, [make_item(1), make_item(2)])
    assert again.added == () and set(again.skipped_paths) == {
        "/data/set/item_1.tif",
        "/data/set/item_2.tif",
    }
    assert store.summary(DS).version == version  # nothing changed
    assert store.file_state(DS, "/data/set/item_1.tif") == (1000, 1)
    assert store.file_state(DS, "/nope.tif") is None


def test_changed_file_replaces_its_items(store: SqliteCatalog) -> None:
    path = "/data/multi.nc"
    old = [make_item(i, path=path, variable="t", time=T0 + i * DAY) for i in range(3)]
    store.add_items(DS, old)
    new = [make_item(i, path=path, variable="t", time=T0 + i * DAY, mtime=2) for i in range(2)]
    result = store.add_items(DS, new)
    assert result.replaced_paths == (path,) and len(result.added) == 2
    found = store.find_items(DS, ItemQuery())
    assert ids(found) == list(result.added)
    assert all(it.file_mtime_ns == 2 for it in found)
    assert store.summary(DS).item_count == 2
    assert store.summary(DS).variables[0].item_count == 2


def test_object_ids_are_never_reused(store: SqliteCatalog) -> None:
    a = store.add_items(DS, [make_item(1)]).added
    store.remove_items(DS, RemoveFilter(object_ids=a))
    b = store.add_items(DS, [make_item(1)]).added
    assert b[0] > a[0]


def test_invalid_extent_is_rejected_without_changes(store: SqliteCatalog) -> None:
    bad = replace(make_item(2), extent=Extent(5, 5, 1, 1))
    with pytest.raises(RasterRejected, match="not a valid rectangle"):
        store.add_items(DS, [make_item(1), bad])
    assert store.summary(DS).item_count == 0


def test_failed_transaction_rolls_back(store: SqliteCatalog) -> None:
    store.add_items(DS, [make_item(0)])
    before = store.summary(DS)
    # dimension names are unique per item regardless of case: the second insert fails in SQLite
    bad = make_item(2, variable="v", dimensions={"level": 1.0, "LEVEL": 2.0})
    with pytest.raises(StoreError) as info:
        store.add_items(DS, [make_item(1), bad])
    assert info.value.next_step
    assert store.summary(DS) == before
    assert [it.name for it in store.find_items(DS, ItemQuery())] == ["item_0"]


# -- finding ---------------------------------------------------------------------------


def test_find_by_extent_and_dataset_isolation(store: SqliteCatalog) -> None:
    store.create_dataset(MosaicDataset("Other", ""))
    store.add_items(DS, [make_item(i, x=i * 20.0, y=0.0) for i in range(10)])
    store.add_items("Other", [make_item(i, x=i * 20.0, y=0.0, path=f"/o{i}") for i in range(10)])
    found = store.find_items(DS, ItemQuery(extent=Extent(25, 5, 45, 6)))
    assert [it.name for it in found] == ["item_1", "item_2"]  # touching edges count
    assert store.count_items(DS, ItemQuery(extent=Extent(25, 5, 45, 6))) == 2
    assert store.find_items(DS, ItemQuery(extent=Extent(1000, 1000, 1001, 1001))) == []
    point = store.find_items(DS, ItemQuery(extent=Extent(30, 5, 30, 5)))
    assert [it.name for it in point] == ["item_1"]


def test_rtree_rounding_is_rechecked_exactly(store: SqliteCatalog) -> None:
    # float32 boxes in the R*Tree are rounded outwards; the exact check must drop near misses
    x = 1_000_000.0
    store.add_items(DS, [make_item(1, x=x, y=0.0, size=1.0)])
    assert store.find_items(DS, ItemQuery(extent=Extent(x + 1.00001, 0, x + 2, 1))) == []
    assert len(store.find_items(DS, ItemQuery(extent=Extent(x + 1.0, 0, x + 2, 1)))) == 1


def test_invalid_query_extent(store: SqliteCatalog) -> None:
    with pytest.raises(InvalidParameter, match="extent"):
        store.find_items(DS, ItemQuery(extent=Extent(1, 1, 0, 0)))


def test_time_window_with_open_ends(store: SqliteCatalog) -> None:
    items = [make_item(i, time=T0 + i * DAY) for i in range(10)]
    items.append(make_item(20, time=T0 - 30 * DAY, end_time=T0 + 3 * DAY + 1))  # long interval
    items.append(make_item(21))  # no time: never matches a time filter
    store.add_items(DS, items)

    def names(t1: int | None, t2: int | None) -> set[str]:
        return {it.name for it in store.find_items(DS, ItemQuery(time=(t1, t2)))}

    assert names(T0 + 2 * DAY, T0 + 4 * DAY) == {"item_2", "item_3", "item_4", "item_20"}
    assert names(T0 + 8 * DAY, None) == {"item_8", "item_9"}
    assert names(None, T0) == {"item_0", "item_20"}
    assert names(T0 + 3 * DAY + 2, T0 + 3 * DAY + 5) == set()
    assert names(T0 + 3 * DAY + 1, T0 + 3 * DAY + 1) == {"item_20"}
    assert len(names(None, None)) == 11
    assert store.count_items(DS, ItemQuery(time=(T0 + 5 * DAY, None))) == 5


def test_where_matches_python_evaluation(store: SqliteCatalog) -> None:
    rng = random.Random(7)
    store.add_items(DS, [random_item(rng, i) for i in range(120)])
    everything = store.find_items(DS, ItemQuery())
    clauses = [
        "OBJECTID IN (1, 5, 9, 77)",
        "OBJECTID NOT IN (1, 5, 9, 77)",
        "OBJECTID IN (" + ",".join(str(i) for i in range(0, 200, 3)) + ")",
        "Variable = 'temp'",
        "UPPER(Variable) = 'TEMP'",
        "Variable IS NULL OR StdZ < -5",
        "NOT (StdZ = 0)",
        "StdZ BETWEEN -10 AND 0 AND LowPS <= 1",
        "StdTime >= DATE '2023-12-01' AND StdTime < '2023-12-20'",
        "StdTimeEnd > AcquisitionDate",
        "Name LIKE 'ITEM_1%'",
        "Name NOT LIKE '%5'",
        "Dimensions LIKE '%level%'",
        "PixelType IN ('U16', 'F32') AND BandCount >= 2",
        "CenterX > 0 AND Shape_Area > 100",
        "MaxPS >= 64 OR HighPS = 16",
        "ZOrder IS NULL AND Tag = 'Dataset' AND Category = 1",
        "DateAdded > 0 AND MinPS = 0",
        "1=0",
    ]
    for text in clauses:
        cond = parse_where(text)
        expected = [it.id for it in everything if evaluate(cond, item_attributes(it))]
        got = ids(store.find_items(DS, ItemQuery(where=cond)))
        assert got == expected, text
        assert store.count_items(DS, ItemQuery(where=cond)) == len(expected), text


def test_dimension_filters(store: SqliteCatalog) -> None:
    items: list[RasterItem] = []
    for v in ("temp", "salt"):
        for d, z in enumerate((0.0, -10.0)):
            for t in range(3):
                items.append(
                    make_item(
                        len(items),
                        variable=v,
                        time=T0 + t * DAY,
                        dimensions={"StdZ": z, "member": float(d + t)},
                    )
                )
    store.add_items(DS, items)

    def find(*filters: DimensionFilter) -> set[tuple[str | None, float, int | None]]:
        return {
            (it.variable, it.dimensions["StdZ"], it.time)
            for it in store.find_items(DS, ItemQuery(dimensions=filters))
        }

    assert len(find(DimensionFilter("TEMP", None))) == 6
    assert find(
        DimensionFilter("temp", "StdZ", (-10.0,)), DimensionFilter("temp", "stdtime", (T0,))
    ) == {("temp", -10.0, T0)}
    assert find(DimensionFilter("salt", "StdTime", ((T0 + DAY, T0 + 5 * DAY),))) == {
        ("salt", z, T0 + t * DAY) for z in (0.0, -10.0) for t in (1, 2)
    }
    assert find(DimensionFilter("salt", "StdZ", ((-20.0, -5.0),))) == {
        ("salt", -10.0, T0 + t * DAY) for t in range(3)
    }
    # another dimension lives in item_dims
    assert find(DimensionFilter("temp", "member", (3.0,))) == {("temp", -10.0, T0 + 2 * DAY)}
    # different variables: either; a filter without a variable applies to both
    both = find(
        DimensionFilter("temp", "StdZ", (0.0,)),
        DimensionFilter("salt", "StdZ", (-10.0,)),
        DimensionFilter(None, "StdTime", (T0,)),
    )
    assert both == {("temp", 0.0, T0), ("salt", -10.0, T0)}
    assert find(DimensionFilter("nope", None)) == set()


def test_pixel_size_filter(store: SqliteCatalog) -> None:
    store.add_items(
        DS,
        [
            make_item(1, low_ps=1.0, high_ps=8.0),  # MaxPS 16
            make_item(2, low_ps=10.0, high_ps=80.0),  # MaxPS 160
        ],
    )
    assert {it.name for it in store.find_items(DS, ItemQuery(pixel_size=4.0))} == {"item_1"}
    assert {it.name for it in store.find_items(DS, ItemQuery(pixel_size=10.0))} == {
        "item_1",
        "item_2",
    }
    assert {it.name for it in store.find_items(DS, ItemQuery(pixel_size=100.0))} == {"item_2"}


def test_order_by_and_paging(store: SqliteCatalog) -> None:
    items = [make_item(i, time=T0 + (i % 4) * DAY, name=f"n{i:02d}") for i in range(10)]
    items.append(make_item(10, name="n10"))  # NULL time sorts last both ways
    store.add_items(DS, items)
    asc = store.find_items(DS, ItemQuery(order_by=(("acquisitiondate", True),)))
    assert [it.name for it in asc][:3] == ["n00", "n04", "n08"] and asc[-1].name == "n10"
    desc = store.find_items(DS, ItemQuery(order_by=(("StdTime", False), ("Name", False))))
    assert [it.name for it in desc][:3] == ["n07", "n03", "n06"] and desc[-1].name == "n10"
    everything = ids(store.find_items(DS, ItemQuery()))
    assert everything == sorted(everything)
    pages = [
        ids(store.find_items(DS, ItemQuery(order_by=(("Name", False),), offset=o, limit=4)))
        for o in (0, 4, 8)
    ]
    assert [len(p) for p in pages] == [4, 4, 3]
    assert sum(pages, []) == ids(store.find_items(DS, ItemQuery(order_by=(("Name", False),))))
    assert store.count_items(DS, ItemQuery(offset=5, limit=1)) == 11
    assert store.find_items(DS, ItemQuery(limit=0)) == []
    with pytest.raises(InvalidParameter, match="orderByFields"):
        store.find_items(DS, ItemQuery(order_by=(("CloudCover", True),)))


def test_object_ids_query(store: SqliteCatalog) -> None:
    added = store.add_items(DS, [make_item(i) for i in range(6)]).added
    wanted = (added[4], added[1], added[1], 99999)
    assert ids(store.find_items(DS, ItemQuery(object_ids=wanted))) == [added[1], added[4]]
    assert store.find_items(DS, ItemQuery(object_ids=())) == []


def test_get_item_errors(store: SqliteCatalog) -> None:
    store.create_dataset(MosaicDataset("Other", ""))
    oid = store.add_items("Other", [make_item(1)]).added[0]
    with pytest.raises(ItemNotFound):
        store.get_item(DS, oid)  # wrong dataset
    with pytest.raises(ItemNotFound):
        store.get_item("Other", oid + 100)


# -- query plans -------------------------------------------------------------------------


def _full_scans(plan: list[str]) -> list[str]:
    return [line for line in plan if line.startswith("SCAN") and "VIRTUAL TABLE" not in line]


def test_query_plans_use_rtree_and_indexes(store: SqliteCatalog) -> None:
    rng = random.Random(3)
    store.add_items(DS, [random_item(rng, i) for i in range(300)])
    plan = store.explain(DS, ItemQuery(extent=Extent(0, 0, 10, 10), time=(T0, T0 + DAY)))
    assert any("items_rtree" in line or "VIRTUAL TABLE INDEX 2:" in line for line in plan)
    assert plan[0].startswith("SCAN r VIRTUAL TABLE INDEX 2:"), plan
    # the R*Tree answers the box (columns 0-3), the dataset (4, 5) and the time window:
    # t_min (column 6) <= window end, t_max (column 7) >= window start
    rtree_constraints = plan[0].split("INDEX 2:")[1]
    assert all(c in rtree_constraints for c in ("B0", "D1", "B2", "D3", "B4", "D5", "B6", "D7"))
    assert any("INTEGER PRIMARY KEY" in line for line in plan)
    assert not _full_scans(plan)
    # without a time the R*Tree is not asked about time at all
    plan = store.explain(DS, ItemQuery(extent=Extent(0, 0, 10, 10)))
    assert plan[0].startswith("SCAN r VIRTUAL TABLE INDEX 2:B0D1B2D3B4D5"), plan
    assert "6" not in plan[0].split("INDEX 2:")[1] and not _full_scans(plan)
    # ByAttribute on time (newest first, before a sort value): the R*Tree narrows by box and
    # time, the few matches are sorted; no walk over the dataset in time order
    newest = ItemQuery(
        extent=Extent(0, 0, 10, 10),
        where=parse_where(f"AcquisitionDate < {T0}"),
        order_by=(("AcquisitionDate", False),),
        limit=20,
    )
    plan = store.explain(DS, newest)
    assert plan[0].startswith("SCAN r VIRTUAL TABLE INDEX 2:B0D1B2D3B4D5B6"), plan
    assert plan[-1] == "USE TEMP B-TREE FOR ORDER BY" and not _full_scans(plan), plan

    plan = store.explain(DS, ItemQuery(time=(T0, T0 + 2 * DAY)))
    assert any("USING INDEX items_time (dataset_id=? AND time>? AND time<?)" in x for x in plan)
    assert not _full_scans(plan)
    plan = store.explain(DS, ItemQuery(time=(None, T0)))
    assert any("items_time" in line for line in plan) and not _full_scans(plan)

    plan = store.explain(DS, ItemQuery(object_ids=(1, 2, 3)))
    assert any("INTEGER PRIMARY KEY" in line for line in plan), plan
    plan = store.explain(DS, ItemQuery(where=parse_where("OBJECTID IN (1,2,3)")))
    assert any("INTEGER PRIMARY KEY" in line for line in plan), plan
    plan = store.explain(DS, ItemQuery())
    assert any("items_dataset" in line for line in plan) and not _full_scans(plan)
    plan = store.explain(DS, ItemQuery(dimensions=(DimensionFilter("temp", "StdZ", (0.0,)),)))
    assert not _full_scans(plan), plan


def test_summary_bounds_use_indexes(store: SqliteCatalog) -> None:
    conn = sqlite3.connect(store.path)
    try:
        plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + BOUNDS_SQL, (1, 0))]
    finally:
        conn.close()
    searches = [line for line in plan if line.startswith("SEARCH items")]
    assert len(searches) == 10, plan
    assert all("COVERING INDEX" in line for line in searches), plan
    assert not _full_scans(plan)


# -- removing --------------------------------------------------------------------------


def test_remove_by_each_filter(store: SqliteCatalog) -> None:
    items = [make_item(i, path=f"/d/a/{i}.tif", time=T0 + i * DAY) for i in range(4)]
    items += [make_item(i, path=f"/d/ab/{i}.tif", time=T0 + i * DAY) for i in range(4, 8)]
    added = store.add_items(DS, items).added
    assert store.remove_items(DS, RemoveFilter(object_ids=(added[0], 12345))) == 1
    assert store.remove_items(DS, RemoveFilter(path="/d/a/1.tif")) == 1
    assert store.remove_items(DS, RemoveFilter(path="/d/a/")) == 2  # not /d/ab/
    assert store.remove_items(DS, RemoveFilter(older_than=T0 + 5 * DAY)) == 1
    assert store.remove_items(DS, RemoveFilter(where=parse_where("Name = 'item_7'"))) == 1
    assert store.remove_items(DS, RemoveFilter(path="/d/ab/", older_than=T0 + 6 * DAY)) == 1
    assert [it.name for it in store.find_items(DS, ItemQuery())] == ["item_6"]
    assert store.remove_items(DS, RemoveFilter(path="/nothing/")) == 0
    with pytest.raises(InvalidParameter, match="without a filter"):
        store.remove_items(DS, RemoveFilter())


# -- summary ---------------------------------------------------------------------------

RANK = {"U8": 0, "U16": 1, "F32": 2}


def _pool(stats: list[tuple[BandStats, float]]) -> tuple[float, float, float, float, int]:
    lo = min((s.min for s, _ in stats if math.isfinite(s.min)), default=math.nan)
    hi = max((s.max for s, _ in stats if math.isfinite(s.max)), default=math.nan)
    good = [(s, w) for s, w in stats if math.isfinite(s.mean) and math.isfinite(s.std)]
    weight = sum(w for _, w in good)
    if weight <= 0:
        return lo, hi, math.nan, math.nan, 0
    mean = sum(s.mean * w for s, w in good) / weight
    sq = sum((s.std**2 + s.mean**2) * w for s, w in good) / weight
    return lo, hi, mean, math.sqrt(max(sq - mean * mean, 0.0)), round(weight)


def _weight(item: RasterItem, s: BandStats) -> float:
    return float(s.count) if s.count > 0 else float(item.width * item.height)


def brute_force(items: list[RasterItem]) -> dict[str, object]:
    """The summary recomputed from scratch, in plain Python."""
    if not items:
        return {"item_count": 0}
    times = [it.time for it in items if it.time is not None]
    ends = [it.end_time or it.time for it in items if it.time is not None]
    band_count = max(it.band_count for it in items)
    bands = []
    for b in range(max(len(it.stats) for it in items)):
        bands.append(
            _pool([(it.stats[b], _weight(it, it.stats[b])) for it in items if len(it.stats) > b])
        )
    nodata = Counter(repr(it.nodata) for it in items if it.nodata is not None)
    names = Counter(it.band_names for it in items)
    variables = {}
    for name in sorted({it.variable for it in items if it.variable}):
        mine = [it for it in items if it.variable == name]
        dims: dict[str, set[float]] = {}
        for it in mine:
            if it.time is not None:
                dims.setdefault("StdTime", set()).add(float(it.time))
            for k, v in it.dimensions.items():
                dims.setdefault(k, set()).add(v)
        variables[name] = (
            len(mine),
            {k: sorted(v) for k, v in dims.items()},
            _pool([(s, _weight(it, s)) for it in mine for s in it.stats]),
        )
    return {
        "item_count": len(items),
        "extent": Extent.union_all(it.extent for it in items),
        "cells": (
            min(it.low_ps for it in items),
            min(it.low_ps * it.cell_size_y / it.cell_size_x for it in items),
            max(it.high_ps for it in items),
            max(it.high_ps * it.cell_size_y / it.cell_size_x for it in items),
        ),
        "time_extent": (min(times), max(ends)) if times else None,
        "band_count": band_count,
        "band_names": sorted(names.items(), key=lambda kv: (-len(kv[0]), -kv[1]))[0][0],
        "pixel_type": max((it.pixel_type for it in items), key=RANK.__getitem__),
        "bands": bands,
        "nodata": float(sorted(nodata.items(), key=lambda kv: (-kv[1], kv[0]))[0][0])
        if nodata
        else None,
        "variables": variables,
    }


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def _stats_match(got: BandStats | None, want: tuple[float, float, float, float, int]) -> bool:
    if got is None:  # no usable statistics at all
        return all(math.isnan(w) for w in want[:4]) and want[4] == 0
    values = (got.min, got.max, got.mean, got.std)
    return all(_close(g, w) for g, w in zip(values, want[:4], strict=True)) and got.count == want[4]


def assert_summary(summary: DatasetSummary, items: list[RasterItem]) -> None:
    want = brute_force(items)
    assert summary.item_count == want["item_count"]
    if not items:
        assert summary.extent is None and summary.variables == () and summary.band_stats == ()
        assert summary.time_extent is None and summary.pixel_type == "UNKNOWN"
        return
    assert summary.extent == want["extent"]
    got_cells = (
        summary.min_cell_size_x,
        summary.min_cell_size_y,
        summary.max_cell_size_x,
        summary.max_cell_size_y,
    )
    assert got_cells == want["cells"]
    assert summary.time_extent == want["time_extent"]
    assert summary.band_count == want["band_count"]
    assert summary.pixel_type == want["pixel_type"]
    assert summary.nodata == want["nodata"]
    bands = want["bands"]
    assert isinstance(bands, list)
    assert len(summary.band_stats) == len(bands)
    for got, expected in zip(summary.band_stats, bands, strict=True):
        assert _stats_match(got, expected), (got, expected)
    variables = want["variables"]
    assert isinstance(variables, dict)
    assert [v.name for v in summary.variables] == list(variables)
    for var in summary.variables:
        count, dims, stats = variables[var.name]
        assert var.item_count == count
        assert {d.name: list(d.values) for d in var.dimensions} == dims
        assert _stats_match(var.stats, stats), (var.stats, stats)


def test_summary_of_an_empty_dataset(store: SqliteCatalog) -> None:
    s = store.summary(DS)
    assert s == DatasetSummary(version=0)


def test_summary_units_and_dimension_order(store: SqliteCatalog) -> None:
    store.add_items(
        DS,
        [
            make_item(
                1,
                variable="temp",
                time=T0,
                dimensions={"StdZ": -5.0, "ens": 1.0},
                attributes={
                    "unit": "degC",
                    "description": "sea temperature",
                    "dimension_units": {"StdZ": "m", "StdTime": "ISO8601"},
                },
            )
        ],
    )
    (var,) = store.summary(DS).variables
    assert (var.name, var.unit, var.description) == ("temp", "degC", "sea temperature")
    assert [(d.name, d.unit) for d in var.dimensions] == [
        ("StdTime", "ISO8601"),
        ("StdZ", "m"),
        ("ens", ""),
    ]


def test_summary_follows_random_adds_and_removes(store: SqliteCatalog) -> None:
    rng = random.Random(20240912)
    model: dict[int, RasterItem] = {}
    next_i = 0
    version = store.summary(DS).version
    for _step in range(60):
        action = rng.random()
        if action < 0.55 or not model:
            batch = [random_item(rng, next_i + k) for k in range(rng.randrange(1, 8))]
            next_i += len(batch)
            if model and rng.random() < 0.3:  # re-add a known path with a new state
                old = rng.choice(list(model.values()))
                batch.append(replace(random_item(rng, next_i), path=old.path))
                next_i += 1
            batch_paths = {it.path for it in batch}
            result = store.add_items(DS, batch)
            for oid in [k for k, it in model.items() if it.path in set(result.replaced_paths)]:
                del model[oid]
            fresh = store.find_items(DS, ItemQuery(object_ids=result.added))
            model.update({it.id: it for it in fresh if it.id is not None})
            assert {it.path for it in fresh} <= batch_paths
        elif action < 0.7:
            victims = rng.sample(list(model), k=min(len(model), rng.randrange(1, 6)))
            assert store.remove_items(DS, RemoveFilter(object_ids=tuple(victims))) == len(victims)
            for oid in victims:
                del model[oid]
        elif action < 0.8:
            folder = f"/data/rand/{rng.choice('abc')}/"
            gone = [k for k, it in model.items() if it.path.startswith(folder)]
            assert store.remove_items(DS, RemoveFilter(path=folder)) == len(gone)
            for oid in gone:
                del model[oid]
        elif action < 0.9:
            cond = parse_where(rng.choice(["Variable = 'temp'", "StdZ < -5", "BandCount = 2"]))
            gone = [k for k, it in model.items() if evaluate(cond, item_attributes(it))]
            assert store.remove_items(DS, RemoveFilter(where=cond)) == len(gone)
            for oid in gone:
                del model[oid]
        else:
            cutoff = T0 + rng.randrange(0, 60) * DAY
            gone = [k for k, it in model.items() if it.time is not None and it.time < cutoff]
            assert store.remove_items(DS, RemoveFilter(older_than=cutoff)) == len(gone)
            for oid in gone:
                del model[oid]
        summary = store.summary(DS)
        assert summary.version > version or summary.item_count == len(model)
        version = summary.version
        assert ids(store.find_items(DS, ItemQuery())) == sorted(model)
        assert_summary(summary, list(model.values()))


def test_widest_pixel_type() -> None:
    assert widest_pixel_type(["U8"]) == "U8"
    assert widest_pixel_type(["U1", "U4"]) == "U4"
    assert widest_pixel_type(["U8", "S8"]) == "S16"
    assert widest_pixel_type(["U16", "S16"]) == "S32"
    assert widest_pixel_type(["U32", "S32"]) == "F64"
    assert widest_pixel_type(["U8", "F32"]) == "F32"
    assert widest_pixel_type(["U1", "S16"]) == "S16"
    assert widest_pixel_type(["F32", "C64"]) == "C64"
    assert widest_pixel_type([]) == "UNKNOWN"
    assert widest_pixel_type(["UNKNOWN", "U16"]) == "U16"


# -- history ---------------------------------------------------------------------------


def test_history_on_and_off(store: SqliteCatalog) -> None:
    store.add_items(DS, [make_item(i) for i in range(3)])
    store.add_items(DS, [make_item(0)])  # skipped only: no change, no entry
    store.remove_items(DS, RemoveFilter(path="/data/set/item_1.tif"))
    entries = store.history(DS)
    assert [e.operation for e in entries] == ["remove", "add", "create"]
    assert entries[1].details["added"] == 3 and entries[1].details["path_count"] == 3
    assert entries[0].details["removed"] == 1
    assert entries[0].time >= entries[1].time >= entries[2].time
    assert [e.operation for e in store.history(DS, limit=1)] == ["remove"]

    quiet = store.create_dataset(MosaicDataset("Quiet", "", history_enabled=False))
    store.add_items("Quiet", [make_item(1)])
    assert store.history("Quiet") == []
    store.update_dataset(replace(quiet, history_enabled=True))
    store.add_items("Quiet", [make_item(2)])
    assert [e.operation for e in store.history("Quiet")] == ["add", "update"]


# -- services and snapshots ------------------------------------------------------------


def test_services_round_trip(store: SqliteCatalog) -> None:
    d = ServiceDefinition(
        "sst",
        DS,
        folder="Ocean",
        description="Sea surface temperature",
        properties={"hasLiveData": "true"},
        config={"maxImageWidth": 4000, "nested": {"a": [1, 2]}},
        configured_state="STOPPED",
        private=True,
    )
    store.save_service(d, create=True)
    assert store.get_service("ocean", "SST") == d
    with pytest.raises(AlreadyExists):
        store.save_service(replace(d, name="SST"), create=True)
    store.save_service(replace(d, description="new"), create=False)
    assert store.get_service("Ocean", "sst").description == "new"
    store.save_service(ServiceDefinition("root_svc", DS), create=False)
    assert [s.qualified_name for s in store.list_services()] == ["root_svc", "Ocean/sst"]
    with pytest.raises(ServiceNotFound, match="nope.ImageServer"):
        store.get_service("", "nope")
    with pytest.raises(DatasetNotFound):
        store.save_service(ServiceDefinition("x", "missing"), create=True)
    with pytest.raises(InvalidParameter, match="serviceName"):
        store.save_service(ServiceDefinition("bad name", DS), create=True)
    store.delete_service("OCEAN", "sst")
    with pytest.raises(ServiceNotFound):
        store.delete_service("Ocean", "sst")


def test_snapshots_round_trip(store: SqliteCatalog) -> None:
    rng = random.Random(1)
    store.add_items(DS, [random_item(rng, i) for i in range(30)])
    d = ServiceDefinition("sst", DS, properties={"hasLiveData": "true"})
    store.save_service(d, create=True)
    assert store.latest_snapshot("", "sst") is None
    summary = store.summary(DS)
    snap = ServiceSnapshot(
        definition=d,
        dataset=store.get_dataset(DS),
        summary=summary,
        spatial_reference=SpatialRef.from_epsg(3857),
        version=1,
        published_at=T0,
    )
    assert store.save_snapshot(snap) is snap
    loaded = store.latest_snapshot("", "SST")
    assert loaded is not None
    assert loaded.version == 1 and loaded.definition == d and loaded.dataset == snap.dataset
    assert loaded.summary.item_count == summary.item_count
    assert loaded.summary.extent == summary.extent
    assert loaded.summary.variables == summary.variables or all(
        a.name == b.name and a.dimensions == b.dimensions
        for a, b in zip(loaded.summary.variables, summary.variables, strict=True)
    )
    assert loaded.spatial_reference == snap.spatial_reference
    with pytest.raises(AlreadyExists, match="not newer"):
        store.save_snapshot(snap)
    for v in range(2, 15):
        store.save_snapshot(replace(snap, version=v))
    latest = store.latest_snapshot("", "sst")
    assert latest is not None and latest.version == 14
    with pytest.raises(ServiceNotFound):
        store.save_snapshot(replace(snap, definition=replace(d, name="other")))
    store.delete_service("", "sst")
    assert store.latest_snapshot("", "sst") is None


def test_snapshot_with_nan_statistics_round_trips(store: SqliteCatalog) -> None:
    from livemosaic.adapters.catalog import codec

    summary = DatasetSummary(
        item_count=1,
        extent=Extent(0, 0, 1, 1),
        band_stats=(BandStats(math.nan, 1.0, math.nan, 0.5, 3),),
        nodata=math.nan,
    )
    text = codec.dumps(codec.summary_to_json(summary))
    assert "NaN" not in text
    back = codec.summary_from_json(codec.json_safe(codec.summary_to_json(summary)))
    assert back.nodata is not None and math.isnan(back.nodata)
    assert math.isnan(back.band_stats[0].min) and back.band_stats[0].max == 1.0
