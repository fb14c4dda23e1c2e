"""Shared CLI plumbing: settings from the environment plus global flags, and the adapters."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from livemosaic.core.events import EventBus
from livemosaic.core.ingest import Ingestor
from livemosaic.core.ports import CatalogStore, JobStore, Projector, RasterSource
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.errors import LiveMosaicError
from livemosaic.settings import Settings

if TYPE_CHECKING:
    from livemosaic.adapters.catalog import Stores


@dataclass
class CliState:
    """Settings and lazily opened adapters for one CLI invocation."""

    settings: Settings
    _stores: Stores | None = None
    _source: RasterSource | None = None
    _projector: Projector | None = None
    _events: EventBus | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stores(self) -> Stores:
        """The stores of the catalog database named by the settings (opened on first use)."""
        if self._stores is None:
            from livemosaic.adapters.catalog import open_stores

            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._stores = open_stores(self.settings.effective_catalog_url)
        return self._stores

    @property
    def catalog(self) -> CatalogStore:
        """The catalog store named by the settings (opened on first use)."""
        return self.stores.catalog

    @property
    def jobs(self) -> JobStore:
        """The job store of the catalog database (where a server's job runner finds jobs)."""
        return self.stores.jobs

    @property
    def source(self) -> RasterSource:
        """The raster reader."""
        if self._source is None:
            from livemosaic.adapters.raster import RasterioSource

            settings = self.settings
            self._source = RasterioSource(
                settings.data_folders,
                object_store_prefixes=settings.object_store_prefixes,
                object_store_timeout_seconds=settings.object_store_timeout_seconds,
            )
        return self._source

    @property
    def projector(self) -> Projector:
        """The CRS adapter."""
        if self._projector is None:
            from livemosaic.adapters.raster import RasterioProjector

            self._projector = RasterioProjector()
        return self._projector

    def ingestor(self) -> Ingestor:
        """An ingestor bound to the registered data folders."""
        from livemosaic.adapters.objects import object_store_for

        settings = self.settings
        return Ingestor(
            self.catalog,
            self.source,
            settings.data_folders,
            objects=object_store_for(
                settings.object_store_prefixes, timeout=settings.object_store_timeout_seconds
            ),
            object_prefixes=settings.object_store_prefixes,
        )

    def events(self) -> EventBus | None:
        """The event bus to running servers when ``event_bus`` reaches other processes
        (started on first use), else None: servers then find changes by polling."""
        if self._events is None:
            from livemosaic.adapters.events import open_event_bus

            settings = self.settings
            bus = open_event_bus(
                settings.event_bus,
                catalog_url=settings.effective_catalog_url,
                channel=settings.event_channel,
            )
            if not bus.reaches_other_processes:
                return None
            bus.start()
            self._events = bus
        return self._events

    def publisher(self) -> Publisher:
        """A publisher with a private registry (the server loads snapshots itself); running
        servers hear of what it stores through the event bus."""
        return Publisher(self.catalog, ServiceRegistry(), self.projector, events=self.events())

    def close(self) -> None:
        """Send pending events, close the bus and the catalog if they were opened."""
        if self._events is not None:
            self._events.close()
        if self._stores is not None:
            self._stores.close()


def build_settings(data_dir: Path | None, data_folders: tuple[Path, ...]) -> Settings:
    """Settings from env/.env with CLI overrides applied."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    base = Settings()
    if data_folders:
        overrides["data_folders"] = [*base.data_folders, *data_folders]
    return base.model_copy(update=overrides) if overrides else base


def fail(exc: LiveMosaicError | str) -> NoReturn:
    """Print an error (and what to do next) and exit with status 1."""
    click.secho(f"Error: {exc}", fg="red", err=True)
    sys.exit(1)


def echo_json(value: Any) -> None:
    """Print a value as indented JSON."""
    click.echo(json.dumps(value, indent=2, default=str))


pass_state = click.make_pass_decorator(CliState)
