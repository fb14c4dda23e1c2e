from __future__ import annotations

import pytest

from livemosaic.core.models import DatasetSummary, ServiceDefinition
from livemosaic.core.mosaic_rules import (
    MosaicRule,
    attribute_value,
    default_mosaic_rule,
    effective_dimensions,
    filter_by_resolution,
    item_contains_point,
    method_from_name,
    mosaic_item_cap,
    operation_from_name,
    order_items,
    parse_sort_value,
)
from livemosaic.core.ports import DimensionFilter
from livemosaic.core.where import parse_where
from tests.core.fakes import make_item, variable

DAY = 86_400_000
T0 = 1_726_099_200_000  # 2024-09-12T00:00:00Z


def ids(items):
    return [it.id for it in items]


def centred(oid, cx, cy, size=2, **kw):
    """An item of size x size cells centred on (cx, cy)."""
    return make_item(oid, cx - size / 2, cy + size / 2, size, size, **kw)


# --- ordering, every method ----------------------------------------------------------------


def test_none_orders_by_objectid_and_reverses():
    items = [centred(3, 0, 0), centred(1, 5, 5), centred(2, 9, 9)]
    assert ids(order_items(items, MosaicRule(method="None"), (0, 0))) == [1, 2, 3]
    rule = MosaicRule(method="None", ascending=False)
    assert ids(order_items(items, rule, (0, 0))) == [3, 2, 1]


@pytest.mark.parametrize("method", ["Center", "Nadir"])
def test_center_and_nadir_order_by_distance_to_view_centre(method):
    items = [centred(1, 5, 0), centred(2, 1, 0), centred(3, 3, 0)]
    assert ids(order_items(items, MosaicRule(method=method), (0, 0))) == [2, 3, 1]
    rule = MosaicRule(method=method, ascending=False)
    assert ids(order_items(items, rule, (0, 0))) == [1, 3, 2]


def test_viewpoint_orders_by_distance_to_viewpoint_not_view_centre():
    items = [centred(1, 0, 0), centred(2, 10, 10), centred(3, 6, 6)]
    rule = MosaicRule(method="Viewpoint", viewpoint=(10.0, 10.0))
    assert ids(order_items(items, rule, (0, 0))) == [2, 3, 1]
    # without a viewpoint the view centre is used
    assert ids(order_items(items, MosaicRule(method="Viewpoint"), (0, 0))) == [1, 3, 2]


def test_attribute_orders_by_distance_to_sort_value_and_puts_missing_last():
    items = [
        centred(1, 0, 0, time=T0),
        centred(2, 0, 0, time=T0 + 10 * DAY),
        centred(3, 0, 0),  # no date
        centred(4, 0, 0, time=T0 + 4 * DAY),
    ]
    rule = MosaicRule(method="Attribute", sort_field="acquisitiondate", sort_value=T0 + 5 * DAY)
    # distances: 1 -> 5 days, 2 -> 5 days (tie: lower id first), 4 -> 1 day, 3 -> none
    assert ids(order_items(items, rule, (0, 0))) == [4, 1, 2, 3]
    rev = MosaicRule(
        method="Attribute", sort_field="AcquisitionDate", sort_value=T0 + 5 * DAY, ascending=False
    )
    assert ids(order_items(items, rev, (0, 0))) == [1, 2, 4, 3]


def test_attribute_newest_first_with_far_future_sort_value():
    items = [centred(i, 0, 0, time=T0 + i * DAY) for i in (1, 2, 3)]
    rule = MosaicRule(
        method="Attribute", sort_field="AcquisitionDate", sort_value=parse_sort_value("2100/01/01")
    )
    assert ids(order_items(items, rule, (0, 0))) == [3, 2, 1]


def test_attribute_on_user_attribute_and_without_sort_value():
    items = [
        centred(1, 0, 0, attributes={"CloudCover": 30}),
        centred(2, 0, 0, attributes={"CloudCover": 5}),
        centred(3, 0, 0, attributes={"CloudCover": "12.5"}),
    ]
    assert attribute_value(items[2], "cloudcover") == 12.5
    rule = MosaicRule(method="Attribute", sort_field="CloudCover")
    assert ids(order_items(items, rule, (0, 0))) == [2, 3, 1]
    rule = MosaicRule(method="Attribute", sort_field="CloudCover", sort_value=20)
    assert ids(order_items(items, rule, (0, 0))) == [3, 1, 2]


def test_lock_raster_keeps_only_listed_items_in_list_order():
    items = [centred(i, 0, 0) for i in (1, 2, 3, 4)]
    rule = MosaicRule(method="LockRaster", lock_raster_ids=(3, 9, 1))
    assert ids(order_items(items, rule, (0, 0))) == [3, 1]
    rule = MosaicRule(method="LockRaster", lock_raster_ids=(3, 1), ascending=False)
    assert ids(order_items(items, rule, (0, 0))) == [1, 3]


@pytest.mark.parametrize("method", ["Northwest", "Seamline"])
def test_northwest_and_seamline_order_by_distance_to_nw_corner(method):
    items = [centred(1, 90, 10), centred(2, 10, 90), centred(3, 50, 50)]
    nw = (0.0, 100.0)
    assert ids(order_items(items, MosaicRule(method=method), (50, 50), nw)) == [2, 3, 1]
    rev = MosaicRule(method=method, ascending=False)
    assert ids(order_items(items, rev, (50, 50), nw)) == [1, 3, 2]
    # without a corner, the items' own north-west corner is used
    assert ids(order_items(items, MosaicRule(method=method), (50, 50))) == [2, 3, 1]


@pytest.mark.parametrize("ascending", [True, False])
def test_ties_go_to_lower_objectid_in_both_directions(ascending):
    items = [centred(7, 3, 0), centred(2, -3, 0), centred(5, 0, 4)]
    # 7 and 2 are both 3 away from the centre, 5 is 4 away
    rule = MosaicRule(method="Center", ascending=ascending)
    expected = [2, 7, 5] if ascending else [5, 2, 7]
    assert ids(order_items(items, rule, (0, 0))) == expected


# --- defaults from the service ------------------------------------------------------------


def test_default_rule_from_service_properties():
    definition = ServiceDefinition(
        "svc",
        "ds",
        properties={
            "defaultMosaicMethod": "ByAttribute",
            "sortField": "AcquisitionDate",
            "sortValue": "2024/09/12",
            "sortAscending": "false",
            "mosaicOperator": "MT_MEAN",
        },
    )
    rule = default_mosaic_rule(definition)
    assert rule.method == "Attribute"
    assert rule.sort_field == "AcquisitionDate"
    assert rule.sort_value == 1_726_099_200_000
    assert rule.ascending is False
    assert rule.operation == "Mean"


def test_default_rule_without_properties_is_northwest_first():
    rule = default_mosaic_rule(ServiceDefinition("svc", "ds"))
    assert (rule.method, rule.operation, rule.ascending, rule.sort_field) == (
        "Northwest",
        "First",
        True,
        None,
    )


def test_names_and_sort_values():
    assert method_from_name("esriMosaicLockRaster") == "LockRaster"
    assert method_from_name("center") == "Center"
    assert method_from_name("bogus") == "Northwest"
    assert operation_from_name("Blend") == "Blend"
    assert operation_from_name("mt_last") == "Last"
    assert parse_sort_value("12.5") == 12.5
    assert parse_sort_value("2024-09-12 06:00:00") == T0 + 6 * 3_600_000
    assert parse_sort_value(None) is None
    with pytest.raises(ValueError, match="neither a number nor a date"):
        parse_sort_value("yesterday")


def test_mosaic_item_cap_takes_the_lower_of_limit_and_property():
    assert mosaic_item_cap(ServiceDefinition("s", "d"), 20) == 20
    props = {"maxMosaicImageCount": "5"}
    assert mosaic_item_cap(ServiceDefinition("s", "d", properties=props), 20) == 5
    props = {"maxMosaicImageCount": "50"}
    assert mosaic_item_cap(ServiceDefinition("s", "d", properties=props), 20) == 20


# --- resolution and containment ---------------------------------------------------------------


def test_resolution_filter_is_soft():
    fine = centred(1, 0, 0, cell=1.0, high_ps=1.0)  # MaxPS 2
    coarse = centred(2, 0, 0, cell=1.0, high_ps=100.0)  # MaxPS 200
    assert ids(filter_by_resolution([fine, coarse], 1.5)) == [1, 2]
    assert ids(filter_by_resolution([fine, coarse], 50.0)) == [2]
    # nothing fits: keep everything rather than draw nothing
    assert ids(filter_by_resolution([fine, coarse], 1000.0)) == [1, 2]


def test_item_contains_point_uses_non_rectangular_footprints():
    tri = ((0.0, 0.0), (0.0, 10.0), (10.0, 0.0), (0.0, 0.0))
    item = make_item(1, 0, 10, 10, 10, footprint=tri)
    assert item_contains_point(item, 2, 2)
    assert not item_contains_point(item, 8, 8)  # in the box, outside the triangle
    assert not item_contains_point(item, 11, 1)
    box = make_item(2, 0, 10, 10, 10)
    assert item_contains_point(box, 10, 10)  # boundary of a rectangle counts


# --- multidimensional defaults ------------------------------------------------------------------


def md_summary():
    return DatasetSummary(
        variables=(
            variable("temp", StdTime=[T0 + DAY, T0], StdZ=[0.0, -10.0]),
            variable("salt", StdTime=[T0]),
        )
    )


def test_default_slice_is_first_variable_first_time_first_depth():
    dims = effective_dimensions(
        MosaicRule(), md_summary(), ServiceDefinition("s", "d"), time_given=False
    )
    assert dims == (
        DimensionFilter("temp", None),
        DimensionFilter("temp", "StdTime", (float(T0),)),
        DimensionFilter("temp", "StdZ", (-10.0,)),
    )


def test_default_variable_property_and_time_request():
    definition = ServiceDefinition("s", "d", properties={"defaultVariable": "SALT"})
    dims = effective_dimensions(MosaicRule(), md_summary(), definition, time_given=False)
    assert dims == (DimensionFilter("salt", None), DimensionFilter("salt", "StdTime", (float(T0),)))
    dims = effective_dimensions(MosaicRule(), md_summary(), definition, time_given=True)
    assert dims == (DimensionFilter("salt", None),)


def test_named_variable_gets_its_open_dimensions_filled():
    rule = MosaicRule(dimensions=(DimensionFilter("temp", "StdZ", (0.0,)),))
    dims = effective_dimensions(rule, md_summary(), ServiceDefinition("s", "d"), time_given=False)
    assert dims == (
        DimensionFilter("temp", "StdZ", (0.0,)),
        DimensionFilter("temp", "StdTime", (float(T0),)),
    )


def test_no_default_slice_with_where_fids_or_plain_datasets():
    summary = md_summary()
    definition = ServiceDefinition("s", "d")
    rule = MosaicRule(where=parse_where("OBJECTID > 3"))
    assert effective_dimensions(rule, summary, definition, time_given=False) == ()
    assert effective_dimensions(MosaicRule(fids=(1,)), summary, definition, time_given=False) == ()
    plain = DatasetSummary()
    assert effective_dimensions(MosaicRule(), plain, definition, time_given=False) == ()
