"""exportImage item selection on a deep stack in a real SQLite catalog (more than
``max_candidates`` items under one request): the mosaic rule's top items must be found."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest

from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.raster import RasterEncoder, RasterioProjector, RasterioSource
from livemosaic.core.export import ExportLimits, ImageExporter
from livemosaic.core.models import (
    Extent,
    MosaicDataset,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
)
from livemosaic.core.mosaic_rules import (
    MosaicRule,
    attribute_queries,
    filter_by_resolution,
    order_items,
    parse_sort_value,
)
from livemosaic.core.ports import ItemQuery

from .items import make_item

DS = "Live"
CRS = "EPSG:3857"
T0 = 1_726_099_200_000
HOUR = 3_600_000
EAST, WEST = 2000, 1000  # acquisitions of the east place (added first), then the west one
VIEW = Extent(0.0, 0.0, 30.0, 10.0)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteCatalog]:
    """Two places re-imaged hourly: 2000 acquisitions east, then 1000 west (north-west)."""
    s = SqliteCatalog(tmp_path_factory.mktemp("stack") / "catalog.db")
    s.create_dataset(MosaicDataset(DS, CRS))
    items = [
        make_item(i, x=20.0, y=0.0, time=T0 + i * HOUR, path=f"/live/east/{i}.tif")
        for i in range(EAST)
    ]
    items += [
        make_item(EAST + i, x=0.0, y=0.0, time=T0 + (EAST + i) * HOUR, path=f"/live/west/{i}.tif")
        for i in range(WEST)
    ]
    for first in range(0, len(items), 1000):
        s.add_items(DS, items[first : first + 1000])
    s.add_items(
        DS, [make_item(9000 + i, x=10.0, y=0.0, path=f"/live/untimed/{i}.tif") for i in range(3)]
    )
    yield s
    s.close()


def snapshot(store: SqliteCatalog) -> ServiceSnapshot:
    definition = ServiceDefinition("Stack", DS, properties={"maxMosaicImageCount": "20"})
    dataset = store.get_dataset(DS)
    return ServiceSnapshot(definition, dataset, store.summary(DS), SpatialRef.from_epsg(3857), 1, 0)


def exporter(store: SqliteCatalog, **limits: int) -> ImageExporter:
    return ImageExporter(
        store,
        RasterioSource(["/live"]),
        RasterioProjector(),
        RasterEncoder(),
        ExportLimits(**limits),
    )


def select(
    store: SqliteCatalog,
    rule: MosaicRule,
    time: tuple[int | None, int | None] | None = None,
    **limits: int,
) -> list[RasterItem]:
    return exporter(store, **limits).select_items(snapshot(store), rule, VIEW, CRS, 30, time)


@pytest.fixture(scope="module")
def every(store: SqliteCatalog) -> list[RasterItem]:
    """Every item under the view, read once."""
    found = store.find_items(DS, ItemQuery(extent=VIEW))
    assert len(found) == EAST + WEST + 3
    return found


def exact(store: SqliteCatalog, every: list[RasterItem], rule: MosaicRule) -> list[int | None]:
    """Every match, resolution filter, mosaic order, first 20: what select_items must give."""
    ext = store.summary(DS).extent
    assert ext is not None and rule.where is None
    items = filter_by_resolution(every, 1.0)
    ordered = order_items(items, rule, VIEW.center, (ext.xmin, ext.ymax))
    return [it.id for it in ordered[:20]]


def newest_ids(every: list[RasterItem], count: int) -> list[int | None]:
    timed = [it for it in every if it.time is not None]
    return [it.id for it in sorted(timed, key=lambda it: -(it.time or 0))[:count]]


def test_newest_acquisition_on_top_by_attribute(
    store: SqliteCatalog, every: list[RasterItem]
) -> None:
    future = parse_sort_value("2100/01/01")
    rule = MosaicRule("Attribute", sort_field="AcquisitionDate", sort_value=future)
    got = select(store, rule)
    assert got[0].time == T0 + (EAST + WEST - 1) * HOUR  # the newest acquisition
    assert [it.id for it in got] == newest_ids(every, 20) == exact(store, every, rule)
    # no sort value, descending: the same order
    desc = MosaicRule("Attribute", sort_field="StdTime", ascending=False)
    assert [it.id for it in select(store, desc)] == newest_ids(every, 20)
    # far future, ascending=false: the farthest from it (the oldest) first
    oldest = replace(rule, ascending=False)
    got = select(store, oldest)
    assert got[0].time == T0 and [it.id for it in got] == exact(store, every, oldest)


def test_attribute_near_a_date_inside_the_stack(
    store: SqliteCatalog, every: list[RasterItem]
) -> None:
    for offset in (0, 1500 * HOUR + HOUR // 2, 2999 * HOUR, -HOUR):
        for ascending in (True, False):
            rule = MosaicRule(
                "Attribute",
                sort_field="AcquisitionDate",
                sort_value=float(T0 + offset),
                ascending=ascending,
            )
            assert [it.id for it in select(store, rule)] == exact(store, every, rule), (
                offset,
                ascending,
            )


def test_none_and_northwest_on_the_deep_stack(
    store: SqliteCatalog, every: list[RasterItem]
) -> None:
    newest_first = MosaicRule("None", ascending=False)
    assert [it.id for it in select(store, newest_first)] == exact(store, every, newest_first)
    # Northwest: the west place is nearest the corner, and its items were added last, past
    # the first 1000 OBJECTIDs
    northwest = MosaicRule("Northwest")
    got = select(store, northwest)
    assert [it.id for it in got] == exact(store, every, northwest)
    assert all(it.extent.xmin == 0.0 for it in got)


def test_northwest_past_the_bound_is_still_exact(
    store: SqliteCatalog, every: list[RasterItem], caplog: pytest.LogCaptureFixture
) -> None:
    """The catalog orders by centre distance in SQL, so no bound applies and nothing warns."""
    with caplog.at_level(logging.WARNING, logger="livemosaic.core.export"):
        got = select(store, MosaicRule("Northwest"), max_ordered_candidates=2000)
    assert [it.id for it in got] == exact(store, every, MosaicRule("Northwest"))
    assert all(it.extent.xmin == 0.0 for it in got)  # the west place, added last
    assert "matched" not in caplog.text


def test_time_window_on_the_stack(store: SqliteCatalog) -> None:
    when = T0 + (EAST + 17) * HOUR
    got = select(store, MosaicRule("Northwest"), time=(when, when))
    assert [it.time for it in got] == [when]
    rule = MosaicRule("Attribute", sort_field="AcquisitionDate", ascending=False)
    got = select(store, rule, time=(T0 + 100 * HOUR, T0 + 2100 * HOUR))
    assert [it.time for it in got[:2]] == [T0 + 2100 * HOUR, T0 + 2099 * HOUR]


def test_attribute_queries_run_through_the_rtree(store: SqliteCatalog) -> None:
    future = parse_sort_value("2100/01/01")
    rule = MosaicRule("Attribute", sort_field="AcquisitionDate", sort_value=future)
    queries = attribute_queries(ItemQuery(extent=VIEW), rule, 20)
    assert queries is not None
    above, below = queries
    for query, time_constraint in ((above, "D7"), (below, "B6")):
        plan = store.explain(DS, query)
        assert plan[0].startswith("SCAN r VIRTUAL TABLE INDEX 2:B0D1B2D3B4D5"), plan
        assert time_constraint in plan[0], plan  # the sort value bounds the R*Tree time too
        assert any("INTEGER PRIMARY KEY" in line for line in plan), plan
        assert not [x for x in plan if x.startswith("SCAN") and "VIRTUAL TABLE" not in x], plan
    assert store.find_items(DS, above) == []
    assert [it.time for it in store.find_items(DS, below)][:1] == [T0 + 2999 * HOUR]
