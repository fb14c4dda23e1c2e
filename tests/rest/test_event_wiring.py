"""How a server wires its event bus: the bus named by the settings, and the poller that
stands in for it while it brings no events of other processes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.raster import RasterioProjector
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from tests.pgbus import postgres_or_skip, unique_channel
from tests.rest.secure import build_site, running

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1


def _edit_elsewhere(catalog_url: str, description: str) -> int:
    """Store a new snapshot of Live/live as another process would (no bus); its version."""
    catalog = open_catalog(catalog_url)
    try:
        publisher = Publisher(catalog, ServiceRegistry(), RasterioProjector())
        publisher.load_all()
        current = catalog.get_service("Live", "live")
        return publisher.update_definition(replace(current, description=description)).version
    finally:
        catalog.close()


def test_while_the_bus_is_away_the_server_polls(tmp_path: Path, shared_data: Path) -> None:
    ctx = build_site(tmp_path, shared_data, event_bus=UNREACHABLE, snapshot_poll_seconds=0.1)
    with running(ctx):
        assert ctx.events.reaches_other_processes and not ctx.events.connected
        version = _edit_elsewhere(ctx.settings.effective_catalog_url, "polled")
        deadline = time.monotonic() + 10
        while ctx.registry.get("Live", "live").version < version:
            assert time.monotonic() < deadline, "the poller did not stand in for the bus"
            time.sleep(0.02)
        assert ctx.registry.get("Live", "live").definition.description == "polled"


def test_a_connected_bus_replaces_the_poller(tmp_path: Path, shared_data: Path) -> None:
    url = postgres_or_skip()
    ctx = build_site(
        tmp_path,
        shared_data,
        event_bus=url,
        event_channel=unique_channel(),
        snapshot_poll_seconds=0.1,
    )
    with running(ctx):
        deadline = time.monotonic() + 10
        while not ctx.events.connected:
            assert time.monotonic() < deadline, "the bus did not connect"
            time.sleep(0.02)
        assert ctx.follower is not None
        polls = ctx.follower.polls  # the catch-up once connected
        version = _edit_elsewhere(ctx.settings.effective_catalog_url, "silent")
        time.sleep(1.0)  # ten poll periods
        assert ctx.follower.polls == polls  # nothing polled ...
        assert ctx.registry.get("Live", "live").version < version  # ... and no event was sent
