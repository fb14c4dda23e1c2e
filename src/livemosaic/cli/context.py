"""Shared CLI plumbing: settings from the environment plus global flags, and the adapters."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from livemosaic.core.events import EventBus
from livemosaic.core.ingest import Ingestor
from livemosaic.core.ports import CatalogStore, Projector, RasterSource
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.errors import LiveMosaicError
from livemosaic.settings import Settings


@dataclass
class CliState:
    """Settings and lazily opened adapters for one CLI invocation."""

    settings: Settings
    _catalog: CatalogStore | None = None
    _source: RasterSource | None = None
    _projector: Projector | None = None
    _events: EventBus | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def catalog(self) -> CatalogStore:
        """The catalog store named by the settings (opened on first use)."""
        if self._catalog is None:
            from livemosaic.adapters.catalog import open_catalog

            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._catalog = open_catalog(self.settings.effective_catalog_url)
        return self._catalog

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
        return Ingestor(self.catalog, self.source, self.settings.data_folders)

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
        if self._catalog is not None:
            self._catalog.close()


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
