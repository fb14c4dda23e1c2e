from __future__ import annotations

import logging
import random

import numpy as np
import pytest

from livemosaic.core.export import ExportLimits, ExportRequest, ImageExporter
from livemosaic.core.fields import item_attributes
from livemosaic.core.models import BandStats, Extent
from livemosaic.core.mosaic_rules import MosaicRule, filter_by_resolution, order_items
from livemosaic.core.ports import DimensionFilter, ItemQuery
from livemosaic.core.rendering import RenderingRule
from livemosaic.core.where import evaluate, parse_where
from livemosaic.core.where_ast import Compare, Field, Literal_
from livemosaic.errors import InvalidParameter, LimitExceeded
from tests.core.fakes import CRS, World, make_item, variable

DAY = 86_400_000
T0 = 1_726_099_200_000


def exporter(world, **limits):
    return ImageExporter(
        world.catalog, world.source, world.projector, world.encoder, ExportLimits(**limits)
    )


def request(xmin=0, ymin=0, xmax=4, ymax=4, width=4, height=4, **kw):
    kw.setdefault("format", "tiff")
    return ExportRequest(Extent(xmin, ymin, xmax, ymax), CRS, width, height, **kw)


def const(value, rows=4, cols=4, bands=1, dtype=np.uint8):
    return np.full((bands, rows, cols), value, dtype=dtype)


@pytest.fixture
def world():
    return World()


# --- limits and empty areas -------------------------------------------------------------------


def test_size_limits(world):
    ex = exporter(world, max_width=100, max_height=50)
    snap = world.snapshot()
    with pytest.raises(LimitExceeded, match="200x10 exceeds the limit of 100x50") as err:
        ex.render(snap, request(width=200, height=10))
    assert "LIVEMOSAIC_MAX_IMAGE_WIDTH" in str(err.value)
    with pytest.raises(LimitExceeded, match="at least 1 pixel"):
        ex.render(snap, request(width=0))
    small = world.snapshot(properties={"maxImageWidth": "10"})
    with pytest.raises(LimitExceeded, match="limit of 10x50"):
        ex.render(small, request(width=11))


def test_area_without_items_is_fully_invalid(world):
    world.add(make_item(1, 100, 104, 4, 4), const(7))
    block, used = exporter(world).render(world.snapshot(pixel_type="U16"), request())
    assert used == ()
    assert block.data.shape == (1, 4, 4)
    assert block.data.dtype == np.uint16
    assert not block.valid.any()


def test_empty_dataset_without_crs_renders_transparent(world):
    world.dataset = world.dataset.__class__("ds", "")
    result = exporter(world).export(world.snapshot(), request(format="png"))
    assert result.item_ids == ()
    assert not world.encoder.blocks[-1].valid.any()


# --- item selection and composition ---------------------------------------------------------


def add_two_overlapping(world):
    # item 1 covers x 0..3, item 2 covers x 1..4 (4 rows each, unit cells)
    world.add(make_item(1, 0, 4, 3, 4), const(10, cols=3))
    world.add(make_item(2, 1, 4, 3, 4), const(40, cols=3))


@pytest.mark.parametrize(
    ("operation", "row"),
    [
        ("First", [10, 10, 10, 40]),
        ("Last", [10, 40, 40, 40]),
        ("Min", [10, 10, 10, 40]),
        ("Max", [10, 40, 40, 40]),
        ("Mean", [10, 25, 25, 40]),
        ("Sum", [10, 50, 50, 40]),
    ],
)
def test_operators_through_export(world, operation, row):
    add_two_overlapping(world)
    rule = MosaicRule(method="None", operation=operation)
    block, used = exporter(world).render(world.snapshot(), request(mosaic_rule=rule))
    assert block.data[0, 0].tolist() == row
    assert block.valid.all()
    assert used == (1, 2)


def test_blend_weights_by_item_edges(world):
    add_two_overlapping(world)
    rule = MosaicRule(method="None", operation="Blend")
    block, _ = exporter(world).render(world.snapshot(), request(mosaic_rule=rule))
    # row 1 (centre y=2.5, 1.5 from the top and bottom edges of both items):
    # column 1 (x=1.5): weights 1.5 (item 1) and 0.5 (item 2) -> (15 + 20) / 2 = 17.5
    # column 2 (x=2.5): weights 0.5 and 1.5 -> (5 + 60) / 2 = 32.5
    assert block.data[0, 1].tolist() == pytest.approx([10, 17.5, 32.5, 40])
    # row 0 (y=3.5) is 0.5 from both items' top edge: equal weights, plain mean
    assert block.data[0, 0].tolist() == pytest.approx([10, 25, 25, 40])


def test_first_stops_reading_once_the_view_is_filled(world):
    world.add(make_item(1, 0, 4, 4, 4), const(1))
    world.add(make_item(2, 0, 4, 4, 4), const(2))
    world.add(make_item(3, 0, 4, 4, 4), const(3))
    rule = MosaicRule(method="None")
    block, used = exporter(world).render(world.snapshot(), request(mosaic_rule=rule))
    assert world.source.reads == [1]
    assert used == (1,)
    assert np.all(block.data == 1)
    # Last is First over the reversed order: it reads only the last item
    world.source.reads.clear()
    last = MosaicRule(method="None", operation="Last")
    block, used = exporter(world).render(world.snapshot(), request(mosaic_rule=last))
    assert world.source.reads == [3]
    assert np.all(block.data == 3)


def test_first_fills_gaps_from_lower_priority_items(world):
    valid = np.ones((4, 4), dtype=bool)
    valid[:, 2:] = False
    world.add(make_item(1, 0, 4, 4, 4), const(1), valid)
    world.add(make_item(2, 0, 4, 4, 4), const(2))
    block, used = exporter(world).render(world.snapshot(), request(mosaic_rule=MosaicRule("None")))
    assert block.data[0, 0].tolist() == [1, 1, 2, 2]
    assert used == (1, 2)


def test_default_rule_northwest_and_attribute_property(world):
    world.add(make_item(1, 2, 4, 2, 4, time=T0), const(1, cols=2))  # east half
    world.add(make_item(2, 0, 4, 4, 4, time=T0 + DAY), const(2))  # whole view, NW-most centre
    world.add(make_item(3, 0, 4, 4, 4, time=T0 + 2 * DAY), const(3))
    block, used = exporter(world).render(world.snapshot(), request())
    assert np.all(block.data == 2)  # Northwest: item 2 and 3 tie, lower OBJECTID wins
    props = {
        "defaultMosaicMethod": "ByAttribute",
        "sortField": "AcquisitionDate",
        "sortValue": "2100/01/01",
    }
    block, used = exporter(world).render(world.snapshot(properties=props), request())
    assert np.all(block.data == 3)  # newest first
    assert used == (3,)


def test_lock_raster_and_fids(world):
    for oid in (1, 2, 3):
        world.add(make_item(oid, 0, 4, 4, 4), const(oid))
    lock = MosaicRule(method="LockRaster", lock_raster_ids=(3, 1))
    block, used = exporter(world).render(world.snapshot(), request(mosaic_rule=lock))
    assert np.all(block.data == 3)
    assert world.catalog.queries[-1].object_ids == (3, 1)
    fids = MosaicRule(method="None", fids=(2, 3))
    block, _ = exporter(world).render(world.snapshot(), request(mosaic_rule=fids))
    assert np.all(block.data == 2)
    both = MosaicRule(method="LockRaster", lock_raster_ids=(1,), fids=(2,))
    block, used = exporter(world).render(world.snapshot(), request(mosaic_rule=both))
    assert used == () and not block.valid.any()


def test_item_caps(world):
    for oid in (1, 2, 3):
        world.add(make_item(oid, 0, 4, 4, 4), const(oid * 10))
    mean = MosaicRule(method="None", operation="Mean")
    block, used = exporter(world, max_items=2).render(world.snapshot(), request(mosaic_rule=mean))
    assert used == (1, 2)
    assert np.all(block.data == 15)
    snap = world.snapshot(properties={"maxMosaicImageCount": "1"})
    block, used = exporter(world).render(snap, request(mosaic_rule=mean))
    assert used == (1,)


def test_resolution_filter_prefers_items_made_for_the_scale(world):
    # the view is 4 units over 2 pixels: pixel size 2
    world.add(make_item(1, 0, 4, 4, 4, cell=1.0, high_ps=0.5), const(1))  # MaxPS 1
    view = request(width=2, height=2, mosaic_rule=MosaicRule("None"))
    block, used = exporter(world).render(world.snapshot(), view)
    assert used == (1,)  # the only item is kept although it is too fine
    world.add(make_item(2, 0, 4, 4, 4, cell=1.0, high_ps=4.0), const(2))  # MaxPS 8
    block, used = exporter(world).render(world.snapshot(), view)
    assert used == (2,)
    assert np.all(block.data == 2)


def test_time_filter(world):
    world.add(make_item(1, 0, 4, 4, 4, time=T0), const(1))
    world.add(make_item(2, 0, 4, 4, 4, time=T0 + 5 * DAY), const(2))
    rule = MosaicRule("None")
    block, used = exporter(world).render(
        world.snapshot(), request(mosaic_rule=rule, time=(T0 + DAY, None))
    )
    assert used == (2,)


def test_multidimensional_default_slice(world):
    oid = 0
    for var in ("temp", "salt"):
        for t in (T0, T0 + DAY):
            for z in (0.0, -10.0):
                oid += 1
                item = make_item(oid, 0, 4, 4, 4, time=t, variable=var, dimensions={"StdZ": z})
                world.add(item, const(oid))
    variables = (
        variable("temp", StdTime=[T0, T0 + DAY], StdZ=[0.0, -10.0]),
        variable("salt", StdTime=[T0, T0 + DAY], StdZ=[0.0, -10.0]),
    )
    snap = world.snapshot(variables=variables)
    mean = MosaicRule(method="None", operation="Mean")
    block, used = exporter(world).render(snap, request(mosaic_rule=mean))
    # temp at the earliest time and the first StdZ value (-10) is item 2
    assert used == (2,)
    assert np.all(block.data == 2)
    # with a time window StdTime is left open: both times of temp at StdZ -10
    block, used = exporter(world).render(snap, request(mosaic_rule=mean, time=(T0, T0 + DAY)))
    assert used == (2, 4)
    assert np.all(block.data == 3)
    # an explicit definition picks another slice
    salt = MosaicRule(
        method="None",
        dimensions=(
            DimensionFilter("salt", "StdTime", (float(T0 + DAY),)),
            DimensionFilter("salt", "StdZ", (0.0,)),
        ),
    )
    block, used = exporter(world).render(snap, request(mosaic_rule=salt))
    assert used == (7,)


# --- output pipeline through export ----------------------------------------------------------


def test_band_ids_rendering_and_stretch_for_png(world):
    data = np.stack([const(100, dtype=np.uint16)[0], const(300, dtype=np.uint16)[0]])
    world.add(make_item(1, 0, 4, 4, 4, bands=2, pixel_type="U16"), data)
    stats = (BandStats(0, 200, 100, 10), BandStats(0, 600, 300, 10))
    snap = world.snapshot(band_stats=stats, pixel_type="U16")
    ex = exporter(world)
    tiff, _ = ex.render(snap, request(band_ids=(1, 0)))
    assert tiff.data.dtype == np.uint16
    assert tiff.data[:, 0, 0].tolist() == [300, 100]
    png, _ = ex.render(snap, request(format="png", band_ids=(1,)))
    assert png.data.dtype == np.uint8
    assert png.data[0, 0, 0] == 128  # 300 of 0..600
    with pytest.raises(InvalidParameter, match="bandIds.*2 band"):
        ex.render(snap, request(band_ids=(2,)))
    ndvi = RenderingRule("NDVI", {"VisibleBandID": 0, "InfraredBandID": 1})
    block, _ = ex.render(snap, request(rendering_rule=ndvi))
    assert block.data.dtype == np.float32
    assert block.data[0, 0, 0] == pytest.approx(0.5)
    png, _ = ex.render(snap, request(format="png", rendering_rule=ndvi))
    assert png.data[0, 0, 0] == 191  # 0.5 on the -1..1 range: 0.75 * 255 = 191.25


def test_pixel_type_and_nodata_through_export(world):
    data = np.arange(16, dtype=np.uint16).reshape(1, 4, 4) * 100
    world.add(make_item(1, 0, 4, 4, 4, pixel_type="U16"), data)
    ex = exporter(world)
    snap = world.snapshot(pixel_type="U16")
    block, _ = ex.render(snap, request(pixel_type="U8"))
    assert block.data.dtype == np.uint8
    assert block.data[0, 0].tolist() == [0, 100, 200, 255]
    block, _ = ex.render(snap, request(nodata=(100,)))
    assert block.valid[0].tolist() == [True, False, True, True]


def test_hillshade_export_reads_a_border_so_edges_are_right(world):
    # a plane rising 10 m per 10 m cell to the east, larger than the view
    cols = np.arange(8, dtype=np.float32) * 10.0
    dem = np.tile(cols, (8, 1))[None]
    world.add(make_item(1, -20, 60, 8, 8, cell=10.0, pixel_type="F32"), dem)
    view = request(0, 0, 40, 40, 4, 4, rendering_rule=RenderingRule("Hillshade"))
    block, _ = exporter(world).render(world.snapshot(pixel_type="F32"), view)
    assert block.data.shape == (1, 4, 4)
    assert np.all(block.data == 218)
    assert block.valid.all()


def test_export_encodes_the_rendered_block(world):
    world.add(make_item(1, 0, 4, 4, 4), const(9))
    result = exporter(world).export(world.snapshot(), request(format="lerc"))
    assert result.item_ids == (1,)
    assert (result.width, result.height, result.crs) == (4, 4, CRS)
    assert result.image.content == bytes([9] * 16)
    assert world.encoder.blocks[-1].valid.all()


# --- identify and samples -------------------------------------------------------------------


def add_point_items(world):
    two = np.stack([const(11)[0], const(12)[0]])
    world.add(make_item(1, 0, 4, 4, 4, bands=2), two)
    valid = np.zeros((4, 4), dtype=bool)
    valid[:, :2] = True
    world.add(make_item(2, 0, 4, 4, 4, bands=2), np.stack([const(21)[0], const(22)[0]]), valid)
    world.add(make_item(3, 10, 14, 4, 4, bands=2), np.stack([const(31)[0], const(32)[0]]))


def test_identify_values_and_mosaic(world):
    add_point_items(world)
    ex = exporter(world)
    snap = world.snapshot()
    res = ex.identify(snap, 1.5, 2.5, CRS, mosaic_rule=MosaicRule("None"))
    assert res.location == (1.5, 2.5)
    assert res.value == (11.0, 12.0)
    assert [(p.item.id, p.values) for p in res.items] == [(1, (11.0, 12.0)), (2, (21.0, 22.0))]
    res = ex.identify(snap, 1.5, 2.5, CRS, mosaic_rule=MosaicRule("None", operation="Mean"))
    assert res.value == (16.0, 17.0)
    # column 3: item 2 has no data there
    res = ex.identify(snap, 3.5, 2.5, CRS, mosaic_rule=MosaicRule("None", operation="Last"))
    assert res.value == (11.0, 12.0)
    assert [p.values for p in res.items] == [(11.0, 12.0), None]
    res = ex.identify(snap, 1.5, 2.5, CRS, max_items=1)
    assert len(res.items) == 1
    stretch = RenderingRule("Stretch", {"StretchType": 5, "Statistics": [[0, 22, 11, 1]]})
    res = ex.identify(snap, 1.5, 2.5, CRS, rendering_rule=stretch)
    assert res.value == (128.0, 139.0)  # 11/22*255 = 127.5, 12/22*255 = 139.1


def test_identify_outside_every_item(world):
    add_point_items(world)
    res = exporter(world).identify(world.snapshot(), 50, 50, CRS)
    assert res.value is None
    assert res.items == ()


def test_samples_first_value_and_per_item(world):
    add_point_items(world)
    ex = exporter(world)
    snap = world.snapshot()
    points = [(1.5, 2.5), (11.0, 11.0), (50.0, 50.0)]
    rule = MosaicRule("None")
    first = ex.samples(snap, points, CRS, mosaic_rule=rule)
    assert [(s.location_id, s.values, s.item.id if s.item else None) for s in first] == [
        (0, (11.0, 12.0), 1),
        (1, (31.0, 32.0), 3),
        (2, None, None),
    ]
    assert first[0].resolution == 1.0
    assert world.source.reads == [1, 3]  # First: the second item under point 0 is not read
    every = ex.samples(snap, points, CRS, mosaic_rule=rule, first_value_only=False)
    assert [(s.location_id, s.item.id if s.item else None, s.values) for s in every] == [
        (0, 1, (11.0, 12.0)),
        (0, 2, (21.0, 22.0)),
        (1, 3, (31.0, 32.0)),
        (2, None, None),
    ]
    maxed = ex.samples(snap, points[:1], CRS, mosaic_rule=MosaicRule("None", operation="Max"))
    assert maxed[0].values == (21.0, 22.0)
    assert maxed[0].item.id == 1


# --- candidates: the top items by the rule when more than max_candidates match --------------


def stack(world, count, *, times=None, high_ps=None, attributes=None):
    """``count`` items over the same 4x4 view (OBJECTIDs 1..count), acquired at ``times``."""
    for oid in range(1, count + 1):
        when = T0 + oid * DAY if times is None else times[oid - 1]
        extra = {} if attributes is None else attributes[oid - 1]
        item = make_item(
            oid,
            0,
            4,
            4,
            4,
            time=when,
            high_ps=None if high_ps is None else high_ps[oid - 1],
            attributes=extra,
        )
        world.add(item, const(oid % 250))


def reference(world, rule, view, cap, time=None):
    """The exact answer: every match, resolution filter, mosaic order, cap."""
    snap = world.snapshot()
    every = world.catalog._matching("ds", ItemQuery(extent=view.extent, time=time))
    if rule.where is not None:
        every = [it for it in every if evaluate(rule.where, item_attributes(it))]
    items = filter_by_resolution(every, view.extent.width / view.width)
    ext = snap.summary.extent
    nw = (ext.xmin, ext.ymax)
    return [it.id for it in order_items(items, rule, view.extent.center, nw)][:cap]


def selected(world, rule, view, time=None, **limits):
    ex = exporter(world, **limits)
    items = ex.select_items(world.snapshot(), rule, view.extent, CRS, view.width, time)
    return [it.id for it in items]


def test_newest_item_on_top_of_a_deep_stack(world):
    stack(world, 40)  # the newest item has the highest OBJECTID
    rule = MosaicRule(method="Attribute", sort_field="AcquisitionDate", sort_value=4102444800000.0)
    view = request()
    got = selected(world, rule, view, max_candidates=5, max_items=3)
    assert got == [40, 39, 38]
    # two ordered queries from the sort value outwards, each cut at the cap
    above, below = world.catalog.queries[-2:]
    assert above.where == Compare(">=", Field("AcquisitionDate"), Literal_(4102444800000.0))
    assert above.order_by == (("AcquisitionDate", True),) and above.limit == 3
    assert below.where == Compare("<", Field("AcquisitionDate"), Literal_(4102444800000.0))
    assert below.order_by == (("AcquisitionDate", False),) and below.limit == 3
    # the old way (first max_candidates by OBJECTID, ordered afterwards) would draw 5, 4, 3
    block, used = exporter(world, max_candidates=5, max_items=1).render(
        world.snapshot(), request(mosaic_rule=rule)
    )
    assert used == (40,) and np.all(block.data == 40)


@pytest.mark.parametrize("seed", range(6))
def test_attribute_order_is_exact_beyond_max_candidates(world, seed):
    rng = random.Random(seed)
    count = 60
    times = [T0 + rng.randrange(0, 30) * DAY if rng.random() < 0.85 else None for _ in range(count)]
    attrs = [{"ZOrder": rng.choice([None, 1, 2, 3, 5, 8])} for _ in range(count)]
    stack(world, count, times=times, attributes=attrs)
    view = request()
    for _ in range(12):
        field_name = rng.choice(["AcquisitionDate", "StdTime", "ZOrder", "OBJECTID", "LowPS"])
        value = rng.choice([None, float(T0 + rng.randrange(-5, 35) * DAY), 2.0, 30.0, 1e15])
        rule = MosaicRule(
            method="Attribute",
            sort_field=field_name,
            sort_value=value,
            ascending=rng.random() < 0.6,
            where=rng.choice([None, parse_where("OBJECTID > 10")]),
        )
        cap = rng.choice([1, 3, 7])
        want = reference(world, rule, view, cap)
        assert selected(world, rule, view, max_candidates=4, max_items=cap) == want, rule


def test_items_without_a_value_come_last(world):
    stack(world, 12, times=[None] * 8 + [T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY])
    rule = MosaicRule(method="Attribute", sort_field="AcquisitionDate", sort_value=float(T0))
    got = selected(world, rule, request(), max_candidates=3, max_items=6)
    assert got == [9, 10, 11, 12, 1, 2]


def test_none_descending_beyond_max_candidates(world):
    stack(world, 30)
    rule = MosaicRule(method="None", ascending=False)
    assert selected(world, rule, request(), max_candidates=5, max_items=2) == [30, 29]
    assert world.catalog.queries[-1].order_by == (("OBJECTID", False),)


@pytest.mark.parametrize("method", ["Northwest", "Center", "Viewpoint", "Seamline", "Nadir"])
def test_distance_orders_fetch_every_match_below_the_bound(world, method):
    # small items spread over the view: item 37 lies nearest the north-west corner
    for oid in range(1, 41):
        x = 1 + (oid * 7) % 30 if oid != 37 else 0
        y = 40 - (oid * 11) % 30 if oid != 37 else 40
        world.add(make_item(oid, x, y, 2, 2), const(oid, 2, 2))
    view = request(0, 0, 40, 40, 8, 8)
    rule = MosaicRule(method=method, viewpoint=(0.0, 40.0) if method == "Viewpoint" else None)
    want = reference(world, rule, view, 4)
    got = selected(world, rule, view, max_candidates=5, max_items=4, max_ordered_candidates=100)
    assert got == want
    if method in ("Northwest", "Seamline", "Viewpoint"):
        assert got[0] == 37


def test_distance_orders_past_the_bound_are_exact(world, caplog):
    for oid in range(1, 41):
        x = 1 + (oid * 7) % 30 if oid != 37 else 0
        world.add(make_item(oid, x, 40 if oid == 37 else 20, 2, 2), const(oid, 2, 2))
    view = request(0, 0, 40, 40, 8, 8)
    ex = exporter(world, max_candidates=5, max_items=4, max_ordered_candidates=20)
    snap = world.snapshot()
    with caplog.at_level(logging.WARNING, logger="livemosaic.core.export"):
        first = ex.select_items(snap, MosaicRule("Northwest"), view.extent, CRS, 8)
        center = ex.select_items(snap, MosaicRule("Center"), view.extent, CRS, 8)
    # the catalog orders by centre distance itself: item 37, nearest the north-west
    # corner, is on top although 40 items match and only 5 candidates are read
    assert first[0].id == 37 and len(first) == 4
    assert [it.id for it in first] == reference(world, MosaicRule("Northwest"), view, 4)
    assert [it.id for it in center] == reference(world, MosaicRule("Center"), view, 4)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_attribute_on_a_text_field_orders_every_match(world):
    for oid in range(1, 31):
        world.add(make_item(oid, 0, 4, 4, 4, attributes={"Cloud": (oid * 13) % 31}), const(oid))
    rule = MosaicRule(method="Attribute", sort_field="Cloud", ascending=False)
    got = selected(world, rule, request(), max_candidates=5, max_items=2)
    assert got == reference(world, rule, request(), 2) == [19, 7]  # Cloud 30, 29


def test_lock_raster_with_more_ids_than_max_candidates(world):
    stack(world, 20)
    rule = MosaicRule(method="LockRaster", lock_raster_ids=(17, 3, 19, 8, 11, 2, 20))
    got = selected(world, rule, request(), max_candidates=2, max_items=5)
    assert got == [17, 3, 19, 8, 11]
    assert world.catalog.queries[-1].limit is None


def test_resolution_filter_finds_fitting_items_past_the_candidates(world):
    # items 1-30 are too fine for the view (MaxPS 1), items 31-33 fit (MaxPS 16)
    stack(world, 33, high_ps=[0.5] * 30 + [8.0] * 3)
    view = request(width=1, height=1)  # pixel size 4
    rule = MosaicRule(method="None")
    assert selected(world, rule, view, max_candidates=5, max_items=2) == [31, 32]
    assert reference(world, rule, view, 2) == [31, 32]
    # nothing fits anywhere: every item is kept, as before
    coarse = request(0, 0, 400, 400, 1, 1)
    assert selected(world, rule, coarse, max_candidates=5, max_items=2) == [1, 2]


def test_identify_finds_the_top_item_of_a_deep_stack(world):
    stack(world, 30)
    rule = MosaicRule(method="Attribute", sort_field="AcquisitionDate", ascending=False)
    ex = exporter(world, max_candidates=4)
    res = ex.identify(world.snapshot(), 1.5, 2.5, CRS, mosaic_rule=rule, max_items=2)
    assert [p.item.id for p in res.items] == [30, 29]
    samples = ex.samples(world.snapshot(), [(1.5, 2.5), (0.5, 0.5)], CRS, mosaic_rule=rule)
    assert [s.item.id for s in samples] == [30, 30]


def test_attribute_without_a_sort_field_is_objectid_order(world):
    stack(world, 30)
    rule = MosaicRule(method="Attribute", ascending=False)
    assert selected(world, rule, request(), max_candidates=5, max_items=3) == [1, 2, 3]
    assert reference(world, rule, request(), 3) == [1, 2, 3]
    assert all(q.limit == 3 for q in world.catalog.queries)  # not every match


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_attribute_with_a_sort_value_that_is_not_a_number(world, value):
    stack(world, 8, times=[None, None] + [T0 + i * DAY for i in range(6)])
    rule = MosaicRule(method="Attribute", sort_field="AcquisitionDate", sort_value=value)
    want = reference(world, rule, request(), 5)
    assert want == [1, 2, 3, 4, 5]  # no item has a finite distance: OBJECTID order
    assert selected(world, rule, request(), max_candidates=20, max_items=5) == want
    assert selected(world, rule, request(), max_candidates=3, max_items=5) == want
