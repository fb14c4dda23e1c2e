"""ByAttribute on a text field is refused (as in ArcGIS: only number and date fields order)."""

from __future__ import annotations

import json

import httpx
import pytest

from livemosaic.core.mosaic_rules import sort_field_problem, sortable_fields
from livemosaic.core.service_properties import check_properties
from livemosaic.errors import InvalidParameter
from tests.rest.helpers import LiveServer, error_of


@pytest.mark.parametrize("field", ["Name", "name", "ProductName", "Variable"])
def test_export_by_text_field_is_a_400_naming_the_usable_fields(
    client: httpx.Client, live: LiveServer, field: str
) -> None:
    rule = {"mosaicMethod": "esriMosaicAttribute", "sortField": field, "ascending": False}
    response = client.get(
        live.svc("imagery") + "/exportImage",
        params={"f": "json", "mosaicRule": json.dumps(rule), "size": "50,50"},
    )
    err = error_of(response)  # f=json answers errors in the envelope, as ArcGIS does
    assert err["code"] == 400
    message = " ".join(err["details"])
    assert "text field" in message
    assert "AcquisitionDate" in message and "OBJECTID" in message


def test_by_number_and_date_fields_still_work(client: httpx.Client, live: LiveServer) -> None:
    for field in ("AcquisitionDate", "ZOrder", "LowPS"):
        rule = {"mosaicMethod": "esriMosaicAttribute", "sortField": field}
        response = client.get(
            live.svc("imagery") + "/exportImage",
            params={"f": "json", "mosaicRule": json.dumps(rule), "size": "50,50"},
        )
        assert response.status_code == 200, response.text


def test_sortable_fields_are_the_number_and_date_fields() -> None:
    assert "Name" not in sortable_fields()
    assert {"OBJECTID", "AcquisitionDate", "StdTime", "ZOrder"} <= set(sortable_fields())
    assert sort_field_problem("CloudCover") is None  # an item attribute: ordered by its number


def test_service_property_sort_field_text_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="sortField"):
        check_properties({"sortField": "Tag"})
    assert check_properties({"sortField": "AcquisitionDate"}).sort_field == "AcquisitionDate"
