"""The snapshot follower: another process's snapshots are installed from events, and one poll
catches up after a gap. Two publishers with their own registries on one SQLite catalog stand
for two server processes; the bus between them is an in-process one (the PostgreSQL bus is
held to the same contract in tests/adapters/test_event_bus.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.events import LocalEventBus
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.events import Event, ServiceRefreshed, ServiceRemoved, SnapshotInstalled
from livemosaic.core.follow import SnapshotFollower, announce_swaps
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.ports import CatalogStore
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from tests.adapters.test_event_bus import snapshot


@dataclass
class Process:
    catalog: CatalogStore
    registry: ServiceRegistry
    publisher: Publisher
    follower: SnapshotFollower


@pytest.fixture
def pair(tmp_path: Path, shared_data: Path) -> Iterator[tuple[Process, Process, LocalEventBus]]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    bus = LocalEventBus()
    made: list[Process] = []
    for _ in range(2):
        catalog = open_catalog(url)
        registry = ServiceRegistry()
        publisher = Publisher(catalog, registry, RasterioProjector(), events=bus)
        follower = SnapshotFollower(catalog, registry, bus)
        follower.start()
        made.append(Process(catalog, registry, publisher, follower))
    ingestor = Ingestor(made[0].catalog, RasterioSource([shared_data]), [shared_data])
    ingestor.create_dataset("d")
    ingestor.add_paths("d", [shared_data / "size" / "byte.tif"])
    try:
        yield made[0], made[1], bus
    finally:
        for p in made:
            p.follower.stop()
            p.catalog.close()


def definition(name: str = "S") -> ServiceDefinition:
    return ServiceDefinition(name=name, dataset="d", properties={"hasLiveData": "true"})


def test_snapshots_of_another_process_are_installed_from_events(
    pair: tuple[Process, Process, LocalEventBus],
) -> None:
    a, b, _bus = pair
    first = a.publisher.publish(definition())
    assert b.registry.get("", "S").version == first.version == 1
    edited = a.publisher.update_definition(replace(first.definition, description="edited"))
    followed = b.registry.get("", "S")
    assert followed.version == edited.version == 2
    assert followed.definition.description == "edited"
    _previous, refreshed = a.publisher.republish("", "S")
    assert b.registry.get("", "S").version == refreshed.version == 3
    assert b.follower.followed == 3 and a.follower.followed == 0  # A had them already
    assert b.follower.polls == 0  # no polling
    a.publisher.unpublish("", "S")
    assert b.registry.find("", "S") is None


def test_an_old_event_never_rolls_a_service_back(
    pair: tuple[Process, Process, LocalEventBus],
) -> None:
    a, b, bus = pair
    a.publisher.publish(definition())
    a.publisher.republish("", "S")
    bus.publish(SnapshotInstalled("", "S", 1))  # late
    assert b.registry.get("", "S").version == 2
    bus.publish(ServiceRemoved("", "S"))  # the service exists again in the catalog: kept
    assert b.registry.get("", "S").version == 2


def test_after_a_gap_one_poll_catches_up(
    tmp_path: Path, pair: tuple[Process, Process, LocalEventBus]
) -> None:
    a, b, _bus = pair
    a.publisher.publish(definition("kept"))
    a.publisher.publish(definition("gone"))
    # a third process whose bus heard nothing of it
    deaf = LocalEventBus()
    registry = ServiceRegistry()
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        follower = SnapshotFollower(catalog, registry, deaf)
        follower.start()
        Publisher(catalog, registry, RasterioProjector()).load_all()
        a.publisher.republish("", "kept")
        a.publisher.unpublish("", "gone")
        assert registry.get("", "kept").version == 1 and registry.find("", "gone") is not None
        deaf.gap()  # what a bus does once it is connected again
        assert registry.get("", "kept").version == 2
        assert registry.find("", "gone") is None
        assert follower.polls == 1
    finally:
        catalog.close()


def test_a_registry_announces_each_swap_it_serves() -> None:
    bus = LocalEventBus()
    heard: list[Event] = []
    bus.subscribe(heard.append, ServiceRefreshed)
    registry = ServiceRegistry()
    announce_swaps(registry, bus)
    one, two = snapshot(1), snapshot(2)
    registry.swap(one)
    registry.swap(two)
    registry.swap(one)  # older: ignored, not announced
    assert heard == [ServiceRefreshed(None, one), ServiceRefreshed(one, two)]
