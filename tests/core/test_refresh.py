"""Refresh Service in core: a typed request in, typed changes out (no wire format)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import DatasetSummary, Extent, ServiceDefinition
from livemosaic.core.publishing import Publisher
from livemosaic.core.refresh import (
    REFRESH_FIELDS,
    Refresher,
    RefreshFailed,
    RefreshOutcome,
    RefreshRequest,
    SummaryField,
    changed_fields,
    summary_changes,
)
from livemosaic.core.registry import ServiceRegistry
from tests.adapters.test_event_bus import snapshot


@pytest.fixture
def site(tmp_path: Path, shared_data: Path) -> Iterator[tuple[Refresher, Ingestor]]:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    ingestor = Ingestor(catalog, RasterioSource([shared_data]), [shared_data])
    ingestor.create_dataset("d")
    ingestor.add_paths("d", [sorted((shared_data / "mosaic").glob("rgb*.tif"))[0]])
    publisher = Publisher(catalog, ServiceRegistry(), RasterioProjector())
    live = {"hasLiveData": "true"}
    publisher.publish(ServiceDefinition(name="S", dataset="d", folder="F", properties=live))
    publisher.publish(ServiceDefinition(name="still", dataset="d"))
    try:
        yield Refresher(catalog, publisher), ingestor
    finally:
        catalog.close()


def test_a_refresh_reports_typed_changes(
    site: tuple[Refresher, Ingestor], shared_data: Path
) -> None:
    refresher, ingestor = site
    heard: list[RefreshOutcome] = []
    refresher.on_refreshed = heard.append
    same = refresher.refresh(RefreshRequest("F", "S"))
    assert same.changed == () and same.after is same.before  # nothing new: no new version
    ingestor.add_paths("d", sorted((shared_data / "mosaic").glob("rgb*.tif"))[1:])
    outcome = refresher.refresh(RefreshRequest("f", "s"))  # names are case-insensitive
    assert outcome.before is not None and outcome.after.version == outcome.before.version + 1
    assert SummaryField.EXTENT in outcome.changed and SummaryField.ITEM_COUNT in outcome.changed
    assert all(isinstance(f, SummaryField) for f in outcome.changed)
    forced = refresher.refresh(RefreshRequest("F", "S", force=True))
    assert forced.changed == () and forced.after.version == outcome.after.version + 1
    assert heard == [outcome, forced]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (RefreshRequest("F", "missing"), "was not found"),
        (RefreshRequest("", "still"), "hasLiveData=true"),
        (RefreshRequest("F", "S", "MapServer"), "only image services"),
    ],
)
def test_refresh_failures_say_what_to_do(
    site: tuple[Refresher, Ingestor], request_: RefreshRequest, reason: str
) -> None:
    refresher, _ = site
    with pytest.raises(RefreshFailed, match=reason):
        refresher.refresh(request_)


def test_changed_fields_and_what_needs_a_refresh() -> None:
    old = snapshot(1)
    new = replace(old, summary=DatasetSummary(item_count=3, extent=Extent(0, 0, 1, 1)))
    assert changed_fields(old, new) == (SummaryField.EXTENT, SummaryField.ITEM_COUNT)
    first = changed_fields(None, new)  # a first snapshot: the fields that have a value
    assert {SummaryField.EXTENT, SummaryField.ITEM_COUNT} <= set(first)
    assert SummaryField.TIME_EXTENT not in first and SummaryField.DIMENSIONS not in first
    assert summary_changes(old, new.summary) == [SummaryField.EXTENT]  # item counts need none
    assert summary_changes(None, new.summary) == list(REFRESH_FIELDS)
    assert RefreshRequest("Ocean", "SST").service_key == "ocean/sst"
    assert RefreshRequest("", "x", "MapServer").qualified == "x.MapServer"
