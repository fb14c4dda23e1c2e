"""Publishing image services: definitions in the catalog, snapshots in the registry.

A service's published snapshot is built from its dataset summary when it is published, and
kept (persisted) until a refresh or an admin edit replaces it. On start-up every service gets
back the snapshot it was last published or refreshed with, so a restart changes nothing a
client can see.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from livemosaic.core.events import EventBus, ServiceRemoved, SnapshotInstalled
from livemosaic.core.models import (
    SERVICE_NAME_PATTERN,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
)
from livemosaic.core.ports import CatalogStore, Projector
from livemosaic.core.registry import ServiceRegistry, service_key
from livemosaic.core.service_properties import (
    ALL_METHODS,
    PROPERTY_RULES,
    check_properties,
    service_properties,
)
from livemosaic.errors import (
    AlreadyExists,
    InvalidParameter,
    LiveMosaicError,
    ServiceNotFound,
    StoreError,
)

MAX_INSTALL_ATTEMPTS = 5

DEFAULT_PROPERTIES: dict[str, str] = {
    "hasLiveData": "false",
    "hasStaticData": "false",
    "isCached": "false",
    "defaultMosaicMethod": "Northwest",
    "allowedMosaicMethods": ALL_METHODS,
    "mosaicOperator": "First",
    "sortField": "",
    "sortValue": "",
    "sortAscending": "true",
    "defaultCompressionQuality": "75",
    "defaultResamplingMethod": "Bilinear",
    "allowFunction": "true",
    "esriImageServiceSourceType": "esriImageServiceSourceTypeMosaicDataset",
    "minScale": "0",
    "maxScale": "0",
}

# Property names a service may be given (the admin API keeps other keys ArcGIS clients send,
# uninterpreted; the command line refuses them, since there they are typing mistakes).
KNOWN_PROPERTIES: frozenset[str] = frozenset(DEFAULT_PROPERTIES) | frozenset(PROPERTY_RULES)


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return int(time.time() * 1000)


def validate_name(kind: str, value: str, *, allow_empty: bool = False) -> str:
    """Check a service or folder name against the ArcGIS rule ``[A-Za-z0-9_]+``."""
    if allow_empty and value in ("", "/", "#"):
        return ""
    if not re.match(SERVICE_NAME_PATTERN, value):
        raise InvalidParameter(
            kind,
            f"'{value}' is not a valid {kind}.",
            accepted="letters, digits and underscores only",
        )
    return value


def split_qualified(qualified: str) -> tuple[str, str]:
    """``Folder/Name`` → (folder, name); ``Name`` → ("", name)."""
    parts = [p for p in qualified.strip("/").split("/") if p]
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise InvalidParameter("service", f"'{qualified}' is not of the form [Folder/]Name.")


class Publisher:
    """Creates service definitions and builds, persists and swaps their snapshots."""

    def __init__(
        self,
        catalog: CatalogStore,
        registry: ServiceRegistry,
        projector: Projector,
        *,
        events: EventBus | None = None,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.projector = projector
        # told of every snapshot stored and service deleted (other processes follow them)
        self.events = events
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def build_snapshot(self, definition: ServiceDefinition, version: int) -> ServiceSnapshot:
        """A snapshot of a service from its dataset's current summary."""
        dataset = self.catalog.get_dataset(definition.dataset)
        summary = self.catalog.summary(dataset.name)
        if dataset.crs:
            sr = self.projector.describe(dataset.crs)
        else:
            sr = SpatialRef.from_epsg(4326)
        return ServiceSnapshot(
            definition=definition,
            dataset=dataset,
            summary=summary,
            spatial_reference=sr,
            version=version,
            published_at=now_ms(),
        )

    def publish(self, definition: ServiceDefinition) -> ServiceSnapshot:
        """Create a new service over an existing dataset and publish its first snapshot."""
        validate_name("serviceName", definition.name)
        validate_name("folder", definition.folder, allow_empty=True)
        if definition.folder.lower() == "system":
            raise InvalidParameter("folder", "the System folder is reserved for system services.")
        self.catalog.get_dataset(definition.dataset)  # DatasetNotFound with next step
        props = dict(DEFAULT_PROPERTIES)
        props.update({k: str(v) for k, v in definition.properties.items()})
        props["path"] = f"livemosaic:{definition.dataset}"
        check_properties(props)
        definition = replace(definition, properties=props)
        self.catalog.save_service(definition, create=True)
        snapshot = self.catalog.save_snapshot(self.build_snapshot(definition, 1))
        self.registry.swap(snapshot)
        self._installed(snapshot)
        return snapshot

    def update_definition(self, definition: ServiceDefinition) -> ServiceSnapshot:
        """Store a changed definition and swap in a snapshot that carries it.

        The dataset summary in the snapshot is kept as published (only a refresh updates it),
        unless the service changed dataset. Properties whose value changed are validated
        (InvalidParameter); unchanged ones stored by an older version are left as they are.
        """
        stored = self.catalog.get_service(definition.folder, definition.name)
        changed = frozenset(
            k for k, v in definition.properties.items() if stored.properties.get(k) != v
        )
        check_properties(definition.properties, only=changed)
        self.catalog.save_service(definition, create=False)

        def build(current: ServiceSnapshot | None, version: int) -> ServiceSnapshot:
            same = (
                current is not None
                and current.definition.dataset.lower() == definition.dataset.lower()
            )
            if current is not None and same:
                return replace(
                    current, definition=definition, version=version, published_at=now_ms()
                )
            return self.build_snapshot(definition, version)

        return self.install_next(definition.folder, definition.name, build)

    def lock(self, folder: str, name: str) -> threading.Lock:
        """The in-process lock serialising snapshot changes of one service."""
        key = service_key(folder, name)
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def install_next(
        self,
        folder: str,
        name: str,
        build: Callable[[ServiceSnapshot | None, int], ServiceSnapshot | None],
    ) -> ServiceSnapshot:
        """Build the service's next snapshot from the newest one and install it.

        Runs under the service's lock; when another process stored the same version first,
        the snapshot is rebuilt on top of that one (a few attempts), so concurrent edits and
        refreshes never fail each other. ``build`` may return None for "nothing to change".
        """
        with self.lock(folder, name):
            for _attempt in range(MAX_INSTALL_ATTEMPTS):
                current = self.current(folder, name)
                candidate = build(current, (current.version if current else 0) + 1)
                if candidate is None:
                    if current is None:
                        raise ServiceNotFound(f"Service '{folder}/{name}' has no snapshot.")
                    return current
                try:
                    return self.install(candidate)
                except AlreadyExists:
                    continue
        raise StoreError(
            f"Service '{folder}/{name}' changed {MAX_INSTALL_ATTEMPTS} times while being updated.",
            next_step="Retry the operation.",
        )

    def current(self, folder: str, name: str) -> ServiceSnapshot | None:
        """The newest snapshot known: the registry's or the stored one, whichever is newer."""
        live = self.registry.find(folder, name)
        stored = self.catalog.latest_snapshot(folder, name)
        if stored is not None and (live is None or stored.version > live.version):
            self.registry.swap(stored)
            return stored
        return live

    def install(self, snapshot: ServiceSnapshot) -> ServiceSnapshot:
        """Persist a snapshot (its version must be new) and swap it into the registry."""
        saved = self.catalog.save_snapshot(snapshot)
        self.registry.swap(saved)
        self._installed(saved)
        return saved

    def _installed(self, snapshot: ServiceSnapshot) -> None:
        if self.events is not None:
            d = snapshot.definition
            self.events.publish(SnapshotInstalled(d.folder, d.name, snapshot.version))

    def republish(self, folder: str, name: str) -> tuple[ServiceSnapshot | None, ServiceSnapshot]:
        """Rebuild a service's snapshot from the current summary, persist and swap it.

        Returns (previous, new).
        """
        previous: list[ServiceSnapshot | None] = []

        def build(current: ServiceSnapshot | None, version: int) -> ServiceSnapshot:
            previous[:] = [current]
            return self.build_snapshot(self.catalog.get_service(folder, name), version)

        after = self.install_next(folder, name, build)
        return previous[0] if previous else None, after

    def reread(self, folder: str, name: str) -> ServiceSnapshot:
        """Start a service: read its definition and dataset again, as ArcGIS does.

        A snapshot is built from the dataset's current summary when the stored one differs
        from it (rasters added without a refresh, a dataset that was empty when published,
        a changed definition); otherwise the stored snapshot is installed as it is.
        """

        def build(current: ServiceSnapshot | None, version: int) -> ServiceSnapshot | None:
            definition = self.catalog.get_service(folder, name)
            dataset = self.catalog.get_dataset(definition.dataset)
            if (
                current is not None
                and current.definition == definition
                and current.dataset == dataset
                and current.summary == self.catalog.summary(dataset.name)
            ):
                return None
            return self.build_snapshot(definition, version)

        return self.install_next(folder, name, build)

    def unpublish(self, folder: str, name: str) -> None:
        """Delete a service definition (never its dataset) and remove it from the registry."""
        definition = self.catalog.get_service(folder, name)
        self.catalog.delete_service(definition.folder, definition.name)
        self.registry.remove(definition.folder, definition.name)
        if self.events is not None:
            self.events.publish(ServiceRemoved(definition.folder, definition.name))

    def load_all(self) -> list[str]:
        """Start every stored service (at server start-up), each with :meth:`reread`.

        A service gets a new snapshot when its dataset changed since the stored one was built,
        or when it has none. Returns problems found (a
        service whose dataset is gone: it stays unpublished instead of stopping the server; a
        stored property that does not validate: its default is used), which the caller logs.
        """
        problems: list[str] = []
        for definition in self.catalog.list_services():
            problems.extend(
                f"{definition.qualified_name}: property {text} Its default is used; fix it "
                "with 'livemosaic service set' or the admin API."
                for text in service_properties(definition).problems
            )
            try:
                self.reread(definition.folder, definition.name)
            except LiveMosaicError as exc:
                problems.append(f"{definition.qualified_name}: not published: {exc}")
        return problems
