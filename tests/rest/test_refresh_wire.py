"""The Refresh Service wire format, at the edge: parameters → RefreshRequest, outcome →
refreshResults, field names as service info spells them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from livemosaic.core.models import DatasetSummary, Extent
from livemosaic.core.refresh import RefreshOutcome, RefreshRequest, SummaryField
from livemosaic.errors import InvalidParameter
from livemosaic.rest.refresh_wire import (
    GP_JOBS,
    WIRE_NAMES,
    parse_refresh_inputs,
    results_json,
    wire_names,
)
from tests.adapters.test_event_bus import snapshot


def test_parameters_become_a_typed_request_and_are_kept_as_given() -> None:
    sub = parse_refresh_inputs(
        {
            "serviceName": '"Live/tiles"',
            "serviceType": "imageserver",
            "serviceFolder": "#",
            "refreshOptions": '{"force": true}',
        }
    )
    assert sub.request == RefreshRequest("Live", "tiles", "ImageServer", force=True)
    assert sub.inputs == {
        "serviceName": "Live/tiles",
        "serviceType": "imageserver",
        "serviceFolder": "",
        "refreshOptions": '{"force": true}',
    }
    plain = parse_refresh_inputs({"serviceName": "x", "serviceType": "MapServer"})
    assert plain.request == RefreshRequest("", "x", "MapServer", force=False)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"serviceType": "ImageServer"}, "serviceName"),
        ({"serviceName": "x"}, "serviceType"),
        ({"serviceName": "x", "serviceType": "Raster"}, "serviceType"),
        (
            {"serviceName": "x", "serviceType": "ImageServer", "refreshOptions": "{"},
            "refreshOptions",
        ),
        (
            {"serviceName": "x", "serviceType": "ImageServer", "refreshOptions": "[]"},
            "refreshOptions",
        ),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict[str, str], parameter: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_refresh_inputs(params)
    assert caught.value.parameter == parameter


def test_job_inputs_round_trip() -> None:
    for request in (RefreshRequest("F", "n"), RefreshRequest("", "n", force=True)):
        assert GP_JOBS.read_request(GP_JOBS.job_inputs(request)) == request


def test_changed_fields_are_spelled_as_service_info() -> None:
    assert set(WIRE_NAMES) == set(SummaryField)  # every field has its wire names
    every = tuple(SummaryField)
    assert wire_names(every) == [
        "extent",
        "fullExtent",
        "initialExtent",
        "pixelSizeX",
        "pixelSizeY",
        "maxPixelSize",
        "timeInfo.timeExtent",
        "multidimensionalInfo",
        "bandCount",
        "pixelType",
        "statistics",
        "itemCount",
    ]
    assert GP_JOBS.field_names((SummaryField.TIME_EXTENT,)) == ["timeInfo.timeExtent"]


def test_refresh_results() -> None:
    old = snapshot(1)
    summary = DatasetSummary(item_count=4, extent=Extent(0, 0, 2, 1), time_extent=(5, 9))
    new = replace(old, version=2, summary=summary)
    outcome = RefreshOutcome(
        old, new, (SummaryField.EXTENT, SummaryField.TIME_EXTENT, SummaryField.ITEM_COUNT)
    )
    value = json.loads(GP_JOBS.job_results(outcome)["refreshResults"])
    assert value == json.loads(results_json(outcome))
    assert value["changed"] == [
        "extent",
        "fullExtent",
        "initialExtent",
        "timeInfo.timeExtent",
        "itemCount",
    ]
    assert value["generation"] == 2 and value["previousGeneration"] == 1
    assert value["after"]["extent"] == [0, 0, 2, 1] and value["before"]["extent"] is None
    assert value["after"]["timeInfo.timeExtent"] == [5, 9]
    assert value["before"]["itemCount"] == 1 and value["after"]["itemCount"] == 4
    assert value["service"] == "Ocean/sst.ImageServer" and value["success"] is True
