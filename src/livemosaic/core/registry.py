"""Published services as immutable snapshots, swapped atomically.

The registry maps ``folder/name`` (lower-cased) to the current :class:`ServiceSnapshot`.
A request reads the snapshot once and uses that value to the end, so a swap in the middle of
a request cannot mix two versions. Swapping replaces one dictionary entry — a single
reference assignment under a lock — so readers never wait and never see a partial state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from livemosaic.core.models import ServiceSnapshot
from livemosaic.errors import ServiceNotFound

Listener = Callable[[ServiceSnapshot | None, ServiceSnapshot], None]


def service_key(folder: str, name: str) -> str:
    """The registry key of a service: lower-cased ``folder/name`` (folder may be empty)."""
    return f"{folder.strip('/').lower()}/{name.lower()}"


class ServiceRegistry:
    """Current snapshot of each published service."""

    def __init__(self) -> None:
        self._snapshots: dict[str, ServiceSnapshot] = {}
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def get(self, folder: str, name: str) -> ServiceSnapshot:
        """The current snapshot (ServiceNotFound when the service is not published)."""
        snap = self._snapshots.get(service_key(folder, name))
        if snap is None:
            where = f"{folder}/{name}" if folder else name
            raise ServiceNotFound(f"Service '{where}.ImageServer' was not found.")
        return snap

    def find(self, folder: str, name: str) -> ServiceSnapshot | None:
        """The current snapshot or None."""
        return self._snapshots.get(service_key(folder, name))

    def all(self) -> list[ServiceSnapshot]:
        """Every published snapshot, by folder then name."""
        snaps = list(self._snapshots.values())
        return sorted(snaps, key=lambda s: (s.definition.folder.lower(), s.definition.name.lower()))

    def folders(self) -> list[str]:
        """Distinct non-empty folder names."""
        return sorted(
            {s.definition.folder for s in self._snapshots.values() if s.definition.folder}
        )

    def swap(self, snapshot: ServiceSnapshot) -> ServiceSnapshot | None:
        """Install a snapshot if it is newer than the current one; returns the previous one.

        Older or equal versions are ignored (a late message from another process cannot roll
        a service back).
        """
        key = service_key(snapshot.definition.folder, snapshot.definition.name)
        with self._lock:
            old = self._snapshots.get(key)
            if old is not None and old.version >= snapshot.version:
                return old
            new = dict(self._snapshots)
            new[key] = snapshot
            self._snapshots = new
            listeners = list(self._listeners)
        for listener in listeners:
            listener(old, snapshot)
        return old

    def remove(self, folder: str, name: str) -> None:
        """Unpublish a service."""
        key = service_key(folder, name)
        with self._lock:
            new = dict(self._snapshots)
            new.pop(key, None)
            self._snapshots = new

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(old, new)`` after every swap."""
        with self._lock:
            self._listeners.append(listener)
