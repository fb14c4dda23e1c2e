"""DatasetStore, ItemStore and ServiceStore: the same behaviour from every implementation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from livemosaic.core.models import (
    Extent,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
)
from livemosaic.core.ports import DimensionFilter, ItemQuery, RemoveFilter
from livemosaic.core.summary import summarize
from livemosaic.core.where import parse_where
from livemosaic.errors import (
    AlreadyExists,
    DatasetNotFound,
    InvalidParameter,
    ItemNotFound,
    RasterRejected,
    ServiceNotFound,
)
from tests.contract.items import HOUR, close, dataset, item, same_stats
from tests.contract.stores import StoreSet

# --- datasets ------------------------------------------------------------------------------


def test_datasets_are_created_found_listed_updated_and_deleted(stores: StoreSet) -> None:
    cat = stores.catalog
    made = cat.create_dataset(dataset("  Rivers "))
    assert made.name == "Rivers" and made.id is not None and made.created is not None
    cat.create_dataset(dataset("alpha"))
    with pytest.raises(AlreadyExists):
        cat.create_dataset(dataset("RIVERS"))
    with pytest.raises(InvalidParameter):
        cat.create_dataset(dataset("  "))
    assert cat.get_dataset("rivers") == made
    assert [d.name for d in cat.list_datasets()] == ["alpha", "Rivers"]

    changed = cat.update_dataset(replace(made, description="flows", crs="EPSG:4326"))
    assert changed.description == "flows" and changed.crs == "EPSG:4326"
    assert changed.id == made.id and changed.created == made.created
    renamed = cat.update_dataset(replace(changed, name="Streams"))
    assert cat.get_dataset("streams").id == made.id
    with pytest.raises(DatasetNotFound):
        cat.get_dataset("Rivers")
    with pytest.raises(AlreadyExists):
        cat.update_dataset(replace(renamed, name="Alpha"))

    cat.delete_dataset("STREAMS")
    with pytest.raises(DatasetNotFound):
        cat.get_dataset("Streams")
    with pytest.raises(DatasetNotFound):
        cat.delete_dataset("Streams")
    assert [d.name for d in cat.list_datasets()] == ["alpha"]


def test_crs_changes_only_while_empty(stores: StoreSet) -> None:
    cat = stores.catalog
    ds = cat.create_dataset(dataset())
    cat.add_items("ds", [item(1)])
    with pytest.raises(InvalidParameter):
        cat.update_dataset(replace(ds, crs="EPSG:4326"))
    assert cat.get_dataset("ds").crs == ds.crs


def test_a_published_dataset_is_neither_deleted_nor_renamed(stores: StoreSet) -> None:
    cat = stores.catalog
    ds = cat.create_dataset(dataset())
    cat.save_service(ServiceDefinition("svc", "ds"), create=True)
    with pytest.raises(InvalidParameter):
        cat.delete_dataset("ds")
    with pytest.raises(InvalidParameter):
        cat.update_dataset(replace(ds, name="other"))
    cat.update_dataset(replace(ds, description="still allowed"))
    cat.delete_service("", "svc")
    cat.delete_dataset("ds")


def test_item_methods_name_an_unknown_dataset(stores: StoreSet) -> None:
    cat = stores.catalog
    calls: list[Callable[[], object]] = [
        lambda: cat.add_items("nope", [item(1)]),
        lambda: cat.find_items("nope", ItemQuery()),
        lambda: cat.count_items("nope", ItemQuery()),
        lambda: cat.summary("nope"),
        lambda: cat.history("nope"),
        lambda: cat.file_state("nope", "/x.tif"),
        lambda: cat.get_item("nope", 1),
        lambda: cat.remove_items("nope", RemoveFilter(path="/x.tif")),
    ]
    for call in calls:
        with pytest.raises(DatasetNotFound):
            call()


# --- items ---------------------------------------------------------------------------------


def test_adding_is_idempotent_per_file_version(stores: StoreSet) -> None:
    cat = stores.catalog
    cat.create_dataset(dataset())
    first = cat.add_items("ds", [item(1), item(2)])
    assert len(first.added) == 2 and not first.skipped_paths and not first.replaced_paths
    assert cat.file_state("ds", "/data/in/1.tif") == (100, 1)
    assert cat.file_state("ds", "/data/in/9.tif") is None

    again = cat.add_items("ds", [item(1), item(2)])
    assert again.added == () and set(again.skipped_paths) == {"/data/in/1.tif", "/data/in/2.tif"}

    changed = cat.add_items("ds", [item(1, file_size=200, x=50)])
    assert changed.replaced_paths == ("/data/in/1.tif",) and len(changed.added) == 1
    assert cat.file_state("ds", "/data/in/1.tif") == (200, 1)
    assert cat.count_items("ds", ItemQuery()) == 2
    new = cat.get_item("ds", changed.added[0])
    assert new.extent.xmin == 50 and new.path == "/data/in/1.tif"
    with pytest.raises(ItemNotFound):
        cat.get_item("ds", first.added[0])  # the replaced item is gone
    assert len(set(first.added) | set(changed.added)) == 3  # ids are never reused


def test_a_bad_extent_refuses_the_whole_batch(stores: StoreSet) -> None:
    cat = stores.catalog
    cat.create_dataset(dataset())
    bad = replace(item(2), extent=Extent(5, 5, 1, 1))
    with pytest.raises(RasterRejected):
        cat.add_items("ds", [item(1), bad])
    assert cat.count_items("ds", ItemQuery()) == 0
    assert cat.summary("ds").item_count == 0


def _grid(stores: StoreSet) -> list[int]:
    """Nine items on a 3 x 3 grid of 10-unit squares, one hour apart, two variables."""
    cat = stores.catalog
    cat.create_dataset(dataset())
    items = [
        item(
            n,
            x=10.0 * (n % 3),
            y=10.0 * (n // 3 + 1),
            time=n * HOUR,
            variable="temp" if n % 2 == 0 else "rain",
            dimensions={"StdZ": float(n % 3)},
            attributes={"Category": 1, "Tag": f"t{n}"},
        )
        for n in range(9)
    ]
    return list(cat.add_items("ds", items).added)


def test_find_and_count_by_bbox_time_where_and_dimensions(stores: StoreSet) -> None:
    cat = stores.catalog
    ids = _grid(stores)

    def found(query: ItemQuery) -> list[int]:
        result = [it.id for it in cat.find_items("ds", query)]
        assert cat.count_items("ds", query) == len(result)
        return [ids.index(i) for i in result if i is not None]

    assert found(ItemQuery()) == list(range(9))
    assert found(ItemQuery(extent=Extent(1, 1, 9, 9))) == [0]
    assert found(ItemQuery(extent=Extent(5, 5, 15, 15))) == [0, 1, 3, 4]
    assert found(ItemQuery(extent=Extent(100, 100, 200, 200))) == []
    assert found(ItemQuery(time=(2 * HOUR, 4 * HOUR))) == [2, 3, 4]
    assert found(ItemQuery(time=(None, HOUR))) == [0, 1]
    assert found(ItemQuery(time=(7 * HOUR, None))) == [7, 8]
    assert found(ItemQuery(where=parse_where("Tag = 't5' OR Tag LIKE 't7%'"))) == [5, 7]
    assert found(ItemQuery(dimensions=(DimensionFilter("rain", None),))) == [1, 3, 5, 7]
    assert found(ItemQuery(dimensions=(DimensionFilter("temp", "StdZ", (2.0,)),))) == [2, 8]
    assert found(ItemQuery(dimensions=(DimensionFilter(None, "StdZ", ((0.5, 1.5),)),))) == [
        1,
        4,
        7,
    ]
    assert found(ItemQuery(object_ids=(ids[3], ids[6]), time=(5 * HOUR, None))) == [6]
    both = ItemQuery(extent=Extent(0, 0, 30, 20), time=(HOUR, 3 * HOUR))
    assert found(both) == [1, 2, 3]


def test_order_and_paging(stores: StoreSet) -> None:
    cat = stores.catalog
    ids = _grid(stores)
    newest = ItemQuery(order_by=(("StdTime", False),), offset=2, limit=3)
    assert [ids.index(it.id or 0) for it in cat.find_items("ds", newest)] == [6, 5, 4]
    assert cat.count_items("ds", newest) == 9  # offset and limit ignored
    near = ItemQuery(nearest_to=(25.0, 25.0), limit=1)
    assert [ids.index(it.id or 0) for it in cat.find_items("ds", near)] == [8]


def test_remove_by_ids_path_folder_time_and_where(stores: StoreSet) -> None:
    cat = stores.catalog
    cat.create_dataset(dataset())
    added = cat.add_items(
        "ds",
        [
            item(1, path="/data/a/1.tif", time=HOUR),
            item(2, path="/data/a/2.tif", time=5 * HOUR),
            item(3, path="/data/ab/3.tif", time=HOUR, attributes={"Tag": "keep"}),
            item(4, path="/data/b/4.tif", attributes={"Tag": "drop"}),
            item(5, path="/data/b/5.tif", time=9 * HOUR),
        ],
    ).added
    with pytest.raises(InvalidParameter):
        cat.remove_items("ds", RemoveFilter())
    assert cat.remove_items("ds", RemoveFilter(path="/data/a/")) == 2  # not /data/ab
    assert cat.remove_items("ds", RemoveFilter(path="/data/a/1.tif")) == 0
    assert cat.remove_items("ds", RemoveFilter(older_than=2 * HOUR)) == 1  # item 3 only
    assert cat.remove_items("ds", RemoveFilter(where=parse_where("Tag = 'drop'"))) == 1
    assert cat.remove_items("ds", RemoveFilter(object_ids=(added[0], added[4]))) == 1
    assert cat.count_items("ds", ItemQuery()) == 0


# --- summary and history ----------------------------------------------------------------


def _assert_summary_is_recomputed(stores: StoreSet) -> None:
    cat = stores.catalog
    kept = sorted(cat.find_items("ds", ItemQuery()), key=lambda it: it.id or 0)
    got = cat.summary("ds")
    want = summarize(kept, got.version)
    assert got.item_count == want.item_count
    assert got.extent == want.extent and got.time_extent == want.time_extent
    assert (got.min_cell_size_x, got.max_cell_size_x) == (
        want.min_cell_size_x,
        want.max_cell_size_x,
    )
    assert close(got.min_cell_size_y, want.min_cell_size_y)
    assert close(got.max_cell_size_y, want.max_cell_size_y)
    assert (got.band_count, got.band_names, got.pixel_type) == (
        want.band_count,
        want.band_names,
        want.pixel_type,
    )
    assert close(got.nodata, want.nodata)
    assert len(got.band_stats) == len(want.band_stats)
    assert all(same_stats(a, b) for a, b in zip(got.band_stats, want.band_stats, strict=True))
    assert [v.name for v in got.variables] == [v.name for v in want.variables]
    for a, b in zip(got.variables, want.variables, strict=True):
        assert a.dimensions == b.dimensions and a.item_count == b.item_count
        assert same_stats(a.stats, b.stats)


def test_the_summary_follows_every_add_and_remove(stores: StoreSet) -> None:
    cat = stores.catalog
    cat.create_dataset(dataset())
    empty = cat.summary("ds")
    assert empty.item_count == 0 and empty.extent is None
    versions = [empty.version]
    steps: list[Callable[[], object]] = [
        lambda: cat.add_items("ds", [item(1, time=HOUR, nodata=0.0), item(2, x=30, bands=3)]),
        lambda: cat.add_items(
            "ds",
            [
                item(3, y=-5, time=3 * HOUR, end_time=6 * HOUR, pixel_type="S8", nodata=0.0),
                item(4, variable="v", dimensions={"StdZ": 5.0}, time=2 * HOUR, cell=0.5),
                item(5, variable="v", dimensions={"StdZ": 7.0}, nodata=-9.0),
            ],
        ),
        lambda: cat.add_items("ds", [item(2, x=-40, file_size=1, pixel_type="F32")]),
        lambda: cat.remove_items("ds", RemoveFilter(path="/data/in/3.tif")),
        lambda: cat.remove_items("ds", RemoveFilter(path="/data/in/4.tif")),
    ]
    for step in steps:
        step()
        _assert_summary_is_recomputed(stores)
        versions.append(cat.summary("ds").version)
    assert versions == sorted(set(versions))  # every change moves the version on
    s = cat.summary("ds")
    assert s.item_count == 3
    assert s.extent == Extent(-40, 0, 10, 10)
    assert s.time_extent == (HOUR, HOUR)
    assert s.pixel_type == "F32" and s.band_count == 1
    assert [v.name for v in s.variables] == ["v"]
    assert s.variables[0].dimensions[0].values == (7.0,)
    cat.add_items("ds", [item(5)])  # the same version of a file: nothing changes
    assert cat.summary("ds").version == versions[-1]
    cat.remove_items("ds", RemoveFilter(path="/data/"))
    assert cat.summary("ds").item_count == 0 and cat.summary("ds").extent is None


def test_history_lists_changes_newest_first(stores: StoreSet) -> None:
    cat = stores.catalog
    ds = cat.create_dataset(dataset())
    cat.add_items("ds", [item(1), item(2)])
    cat.add_items("ds", [item(1)])  # skipped entirely: no entry
    cat.remove_items("ds", RemoveFilter(path="/data/in/1.tif"))
    cat.update_dataset(replace(ds, description="x"))
    ops = [h.operation for h in cat.history("ds")]
    assert ops == ["update", "remove", "add", "create"]
    add = cat.history("ds")[2].details
    assert add["added"] == 2 and add["paths"] == ["/data/in/1.tif", "/data/in/2.tif"]
    assert cat.history("ds")[1].details["removed"] == 1
    assert [h.operation for h in cat.history("ds", limit=1)] == ["update"]
    cat.create_dataset(dataset("quiet", history=False))
    cat.add_items("quiet", [item(3)])
    assert cat.history("quiet") == []


# --- services and snapshots ----------------------------------------------------------------


def _snapshot(stores: StoreSet, definition: ServiceDefinition, version: int) -> ServiceSnapshot:
    cat = stores.catalog
    ds = cat.get_dataset(definition.dataset)
    summary = cat.summary(definition.dataset)
    return ServiceSnapshot(definition, ds, summary, SpatialRef.from_epsg(3857), version, 1000)


def test_services_are_saved_found_listed_and_deleted(stores: StoreSet) -> None:
    cat = stores.catalog
    cat.create_dataset(dataset())
    with pytest.raises(DatasetNotFound):
        cat.save_service(ServiceDefinition("svc", "nope"), create=True)
    with pytest.raises(InvalidParameter):
        cat.save_service(ServiceDefinition("bad name", "ds"), create=True)
    cat.save_service(ServiceDefinition("Zeta", "ds"), create=True)
    cat.save_service(ServiceDefinition("alpha", "ds", folder="Ops"), create=True)
    cat.save_service(ServiceDefinition("beta", "ds"), create=True)
    with pytest.raises(AlreadyExists):
        cat.save_service(ServiceDefinition("zeta", "ds"), create=True)
    cat.save_service(
        ServiceDefinition("Zeta", "ds", description="new", properties={"hasLiveData": "true"}),
        create=False,
    )
    got = cat.get_service("", "ZETA")
    assert got.description == "new" and got.properties == {"hasLiveData": "true"}
    assert cat.get_service("ops", "ALPHA").folder == "Ops"
    assert [(d.folder, d.name) for d in cat.list_services()] == [
        ("", "beta"),
        ("", "Zeta"),
        ("Ops", "alpha"),
    ]
    cat.delete_service("", "beta")
    with pytest.raises(ServiceNotFound):
        cat.get_service("", "beta")
    with pytest.raises(ServiceNotFound):
        cat.delete_service("", "beta")


def test_snapshot_versions_only_grow(stores: StoreSet) -> None:
    cat = stores.catalog
    cat.create_dataset(dataset())
    cat.add_items("ds", [item(1)])
    svc = ServiceDefinition("svc", "ds", folder="Live")
    other = ServiceDefinition("other", "ds")
    with pytest.raises(ServiceNotFound):
        cat.save_snapshot(_snapshot(stores, svc, 1))
    cat.save_service(svc, create=True)
    cat.save_service(other, create=True)
    assert cat.latest_snapshot("Live", "svc") is None
    assert cat.snapshot_versions() == {}
    cat.save_snapshot(_snapshot(stores, svc, 1))
    cat.save_snapshot(_snapshot(stores, svc, 3))
    with pytest.raises(AlreadyExists):
        cat.save_snapshot(_snapshot(stores, svc, 3))
    with pytest.raises(AlreadyExists):
        cat.save_snapshot(_snapshot(stores, svc, 2))
    latest = cat.latest_snapshot("live", "SVC")
    assert latest is not None and latest.version == 3
    assert latest.summary.item_count == 1 and latest.dataset.name == "ds"
    assert latest.definition.qualified_name == svc.qualified_name
    assert cat.snapshot_versions() == {"live/svc": 3}
    cat.delete_service("Live", "svc")
    assert cat.snapshot_versions() == {}
    cat.save_service(svc, create=True)  # a new service of the same name starts afresh
    assert cat.latest_snapshot("Live", "svc") is None
    cat.save_snapshot(_snapshot(stores, svc, 1))
    assert cat.snapshot_versions() == {"live/svc": 1}
