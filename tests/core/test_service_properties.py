"""Typed service properties: validated when set, read leniently when stored, limits only lowered."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.mosaic_rules import default_mosaic_rule, mosaic_item_cap
from livemosaic.core.ports import CatalogStore
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.service_properties import (
    ServiceLimits,
    check_properties,
    effective_limits,
    parse_properties,
)
from livemosaic.errors import InvalidParameter

SERVER = ServiceLimits(
    max_image_width=4000,
    max_image_height=3000,
    max_record_count=1000,
    max_mosaic_image_count=20,
    max_sample_count=500,
)


def test_defaults_without_properties() -> None:
    props = parse_properties({})
    assert props.problems == ()
    assert props.has_live_data is False and props.default_compression_quality == 75
    assert props.default_mosaic_method == "Northwest" and props.mosaic_operator == "First"
    assert "LockRaster" in props.allowed_mosaic_methods
    assert effective_limits(props, SERVER) == SERVER


def test_values_are_typed() -> None:
    props = parse_properties(
        {
            "hasLiveData": "TRUE",
            "maxImageWidth": "2048",
            "maxRecordCount": "100.0",
            "defaultCompressionQuality": " 90 ",
            "defaultResamplingMethod": "nearest",
            "defaultMosaicMethod": "ByAttribute",
            "allowedMosaicMethods": "Center, LockRaster",
            "sortField": "AcquisitionDate",
            "sortValue": "2024/09/12",
            "sortAscending": "false",
            "mosaicOperator": "MT_MAX",
            "defaultBandIds": "[3,2,1]",
            "minScale": "1e6",
            "allowedUsers": "ann, bob",
            "allowedRoles": "Publisher",
            "somethingArcGIS": "kept as text",
        }
    )
    assert props.problems == ()
    assert props.has_live_data is True
    assert (props.max_image_width, props.max_record_count) == (2048, 100)
    assert props.default_compression_quality == 90
    assert props.default_resampling_method == "NearestNeighbor"
    assert props.default_mosaic_method == "Attribute"
    assert props.allowed_mosaic_methods == ("Center", "LockRaster")
    assert props.sort_value == 1726099200000.0 and props.sort_ascending is False
    assert props.mosaic_operator == "Max" and props.default_band_ids == (3, 2, 1)
    assert props.min_scale == 1e6
    assert props.allowed_users == {"ann", "bob"} and props.allowed_roles == {"publisher"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("maxImageWidth", "wide"),
        ("maxImageWidth", "0"),
        ("maxImageWidth", "-5"),
        ("maxImageWidth", "1.5"),
        ("maxRecordCount", "99999999999999999999"),
        ("maxRecordCount", "NaN"),
        ("maxSampleCount", "inf"),
        ("defaultCompressionQuality", "101"),
        ("hasLiveData", "yes"),
        ("sortAscending", "maybe"),
        ("defaultMosaicMethod", "Random"),
        ("allowedMosaicMethods", "Center,Bogus"),
        ("mosaicOperator", "MT_MEDIAN"),
        ("defaultResamplingMethod", "Lanczos"),
        ("sortValue", "soon"),
        ("defaultBandIds", "red"),
        ("minScale", "-1"),
    ],
)
def test_malformed_values_are_refused_when_set_and_default_when_stored(
    key: str, value: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        check_properties({key: value})
    assert key in str(info.value) and "accepted" in str(info.value)
    stored = parse_properties({key: value})
    assert stored == parse_properties({})  # the default applies
    assert len(stored.problems) == 1 and stored.problems[0].startswith(f"{key}=")


def test_empty_values_mean_unset() -> None:
    assert parse_properties({"maxImageWidth": "", "sortValue": " "}).problems == ()


def test_limits_may_only_lower_the_server_settings() -> None:
    lowered = parse_properties(
        {"maxImageWidth": "100", "maxImageHeight": "200", "maxRecordCount": "10",
         "maxMosaicImageCount": "2", "maxSampleCount": "5"}
    )  # fmt: skip
    assert effective_limits(lowered, SERVER) == ServiceLimits(100, 200, 10, 2, 5)
    raised = parse_properties(
        dict.fromkeys(("maxImageWidth", "maxImageHeight", "maxRecordCount", "maxMosaicImageCount", "maxSampleCount"), "999999")
    )  # fmt: skip
    assert raised.problems == ()
    assert effective_limits(raised, SERVER) == SERVER


def test_enforcement_helpers_read_the_same_typed_values() -> None:
    d = ServiceDefinition(
        "s", "d", properties={"maxMosaicImageCount": "3", "defaultMosaicMethod": "Center"}
    )
    assert mosaic_item_cap(d, 20) == 3 and mosaic_item_cap(d, 2) == 2
    assert default_mosaic_rule(d).method == "Center"
    bad = ServiceDefinition("s", "d", properties={"maxMosaicImageCount": "x", "sortValue": "?"})
    assert mosaic_item_cap(bad, 20) == 20 and default_mosaic_rule(bad).sort_value is None
    assert ServiceDefinition("s", "d", properties={"hasLiveData": "True"}).has_live_data


@pytest.fixture()
def publisher(tmp_path: Path, shared_data: Path) -> Iterator[tuple[Publisher, CatalogStore]]:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    ing = Ingestor(catalog, RasterioSource([shared_data]), [shared_data])
    ing.create_dataset("d")
    ing.add_paths("d", [shared_data / "size" / "byte.tif"])
    try:
        yield Publisher(catalog, ServiceRegistry(), RasterioProjector()), catalog
    finally:
        catalog.close()


def test_publish_and_edit_validate_what_changes(
    publisher: tuple[Publisher, CatalogStore],
) -> None:
    pub, catalog = publisher
    with pytest.raises(InvalidParameter, match="maxRecordCount"):
        pub.publish(ServiceDefinition("S", "d", properties={"maxRecordCount": "lots"}))
    first = pub.publish(ServiceDefinition("S", "d", properties={"maxRecordCount": "50"}))
    with pytest.raises(InvalidParameter, match="maxImageWidth"):
        pub.update_definition(
            replace(
                first.definition, properties={**first.definition.properties, "maxImageWidth": "x"}
            )
        )
    # a value an older version stored unvalidated does not block unrelated edits ...
    legacy = {**first.definition.properties, "maxImageHeight": "tall"}
    catalog.save_service(replace(first.definition, properties=legacy), create=False)
    edited = pub.update_definition(
        replace(first.definition, properties=legacy, description="still editable")
    )
    assert edited.definition.description == "still editable"
    # ... is reported at start-up, and its default is used
    problems = pub.load_all()
    assert any("maxImageHeight='tall'" in p and "default is used" in p for p in problems)
    assert catalog.get_service("", "S").properties["maxRecordCount"] == "50"
