"""The application context: the domain services a running server is built from.

``livemosaic.app.build_context`` builds one :class:`AppContext` from the settings; the REST
layer reads it from ``app.state.ctx``. It lives in its own module so that the REST layer needs
nothing from the composition root (``app`` imports ``rest``, never the other way round).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livemosaic.core.admission import MemoryGate
from livemosaic.core.events import EventBus
from livemosaic.core.export import ImageExporter
from livemosaic.core.follow import SnapshotFollower
from livemosaic.core.pipeline import IngestPipeline
from livemosaic.core.ports import (
    CatalogStore,
    ImageEncoder,
    IngestJournal,
    JobStore,
    Projector,
    RasterSource,
    UserStore,
)
from livemosaic.core.publishing import Publisher
from livemosaic.core.refresh import Refresher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.security import TokenSigner
from livemosaic.core.signin import SigninThrottle
from livemosaic.core.watch_rules import WatchRule
from livemosaic.settings import Settings

if TYPE_CHECKING:
    from livemosaic.adapters.jobs.runner import JobRunner
    from livemosaic.adapters.watch import FolderWatcher

CACHE_ENTRIES = 256


def _local_bus() -> EventBus:
    """The in-process event bus (a context built without the settings' bus)."""
    from livemosaic.adapters.events.local import LocalEventBus

    return LocalEventBus()


class BoundedCache(dict[Any, Any]):
    """A small dict that forgets its oldest entries beyond ``CACHE_ENTRIES`` (per-version results)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > CACHE_ENTRIES:
            del self[next(iter(self))]


@dataclass(slots=True)
class AppContext:
    """Everything a running server uses, built once from the settings."""

    settings: Settings
    catalog: CatalogStore
    source: RasterSource
    projector: Projector
    encoder: ImageEncoder
    registry: ServiceRegistry
    publisher: Publisher
    exporter: ImageExporter
    executor: ThreadPoolExecutor
    gate: MemoryGate
    jobs: JobStore
    users: UserStore
    journal: IngestJournal
    signer: TokenSigner
    refresher: Refresher
    throttle: SigninThrottle
    runner: JobRunner | None = None
    # folders the server watches (watch_config, serve --demo); started by the lifespan
    watch_rules: list[WatchRule] = field(default_factory=list)
    # the ingest pipeline (watcher, HTTP ingest endpoint), built by the lifespan
    pipeline: IngestPipeline | None = None
    watcher: FolderWatcher | None = None
    # services of other kinds listed by the directory: (folder, name, type), e.g. GPServer
    extra_services: list[tuple[str, str, str]] = field(default_factory=list)
    cache: BoundedCache = field(default_factory=BoundedCache)
    # the event bus (event_bus) and the follower of other processes' snapshots
    events: EventBus = field(default_factory=_local_bus)
    follower: SnapshotFollower | None = None

    def close(self) -> None:
        """Stop the bus and the thread pool (waiting for running reads); close the catalog."""
        self.events.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.catalog.close()
