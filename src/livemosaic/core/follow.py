"""Following the snapshots other server processes install.

Every server process keeps its own :class:`~livemosaic.core.registry.ServiceRegistry`. When
one of them stores a new snapshot it publishes :class:`SnapshotInstalled` (or
:class:`ServiceRemoved`); the :class:`SnapshotFollower` of every other process loads that
snapshot from the catalog and swaps it in. :meth:`SnapshotFollower.sync_all` is the one poll
that catches up after the bus may have missed events (a lost connection) and, with a bus that
does not reach other processes, what the server runs periodically instead.

:func:`announce_swaps` makes a registry publish :class:`ServiceRefreshed` for each swap, so
subscribers of this process (the notification WebSocket) hear of every snapshot it serves.
"""

from __future__ import annotations

import logging

from livemosaic.core.events import (
    Event,
    EventBus,
    ServiceRefreshed,
    ServiceRemoved,
    SnapshotInstalled,
    Unsubscribe,
)
from livemosaic.core.models import ServiceSnapshot
from livemosaic.core.ports import CatalogStore
from livemosaic.core.registry import ServiceRegistry, service_key

log = logging.getLogger("livemosaic.follow")


def announce_swaps(registry: ServiceRegistry, bus: EventBus) -> None:
    """Publish :class:`ServiceRefreshed` on ``bus`` after every swap of ``registry``."""

    def announce(old: ServiceSnapshot | None, new: ServiceSnapshot) -> None:
        bus.publish(ServiceRefreshed(old, new))

    registry.subscribe(announce)


class SnapshotFollower:
    """Installs snapshots stored by other processes into this process's registry."""

    def __init__(self, catalog: CatalogStore, registry: ServiceRegistry, bus: EventBus) -> None:
        self.catalog = catalog
        self.registry = registry
        self.bus = bus
        self.followed = 0  # snapshots installed because of an event
        self.polls = 0  # full catch-ups run
        self._unsubscribe: list[Unsubscribe] = []

    def start(self) -> None:
        """Subscribe to the bus (snapshot events, and a catch-up after each gap)."""
        if self._unsubscribe:
            return
        self._unsubscribe = [
            self.bus.subscribe(self.on_event, SnapshotInstalled, ServiceRemoved),
            self.bus.on_gap(self.sync_all),
        ]

    def stop(self) -> None:
        """Stop following."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def on_event(self, event: Event) -> None:
        """Install or drop the service named by a snapshot event (newer versions only)."""
        if isinstance(event, SnapshotInstalled):
            current = self.registry.find(event.folder, event.name)
            if current is not None and current.version >= event.version:
                return  # published here, or already followed
            stored = self.catalog.latest_snapshot(event.folder, event.name)
            if stored is not None:
                self.registry.swap(stored)
                self.followed += 1
        elif isinstance(event, ServiceRemoved):
            if self.catalog.snapshot_versions().get(service_key(event.folder, event.name)):
                return  # created again since
            self.registry.remove(event.folder, event.name)

    def sync_all(self) -> int:
        """Swap in every snapshot stored by other processes and drop services deleted
        elsewhere; returns how many services changed.

        Services published by this process while the versions were read are never dropped:
        only entries seen before the read are candidates.
        """
        self.polls += 1
        registry = self.registry
        before = {service_key(s.definition.folder, s.definition.name): s for s in registry.all()}
        versions = self.catalog.snapshot_versions()
        changed = 0
        for key, version in versions.items():
            folder, name = key.split("/", 1)
            current = registry.find(folder, name)
            if current is not None and current.version >= version:
                continue
            stored = self.catalog.latest_snapshot(folder, name)
            if stored is not None:
                registry.swap(stored)
                changed += registry.find(folder, name) is stored
        for key, seen in before.items():
            if key not in versions and registry.find(*key.split("/", 1)) is seen:
                registry.remove(seen.definition.folder, seen.definition.name)
                changed += 1
        return changed


__all__ = ["SnapshotFollower", "announce_swaps"]
