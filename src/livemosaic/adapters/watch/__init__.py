"""Watching folders: file events and rescans feeding the ingest pipeline.

:func:`build_pipeline` assembles an :class:`~livemosaic.core.pipeline.IngestPipeline` over a
catalog and its ingest journal, the rasterio adapters and the open-for-writing
check (:mod:`.writers`); :class:`FolderWatcher` watches the rules' folders and calls it. In
the server, start the watcher from the lifespan with an in-process refresh trigger;
standalone (``livemosaic watch``) it asks the server for Refresh Service over HTTP with a
publisher token (:mod:`.http_refresh`, given ``--url``), or else submits refresh jobs into the
shared catalog database, where a running server's job runner picks them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from livemosaic.adapters.watch.watcher import FolderWatcher
from livemosaic.adapters.watch.writers import open_for_writing
from livemosaic.core.events import EventBus
from livemosaic.core.ingest import Ingestor
from livemosaic.core.pipeline import IngestPipeline, RefreshTrigger
from livemosaic.core.ports import CatalogStore, IngestJournal, RasterSource
from livemosaic.core.registry import ServiceRegistry


def build_pipeline(
    catalog: CatalogStore,
    journal: IngestJournal,
    source: RasterSource,
    data_folders: Sequence[Path],
    trigger: RefreshTrigger | None = None,
    registry: ServiceRegistry | None = None,
    events: EventBus | None = None,
) -> IngestPipeline:
    """An ingest pipeline over a catalog, its ingest journal and the rasterio adapters."""
    from livemosaic.adapters.raster.confine import Confinement
    from livemosaic.adapters.raster.overview_tiles import CogTileWriter
    from livemosaic.adapters.raster.overviews import RasterioOverviewBuilder
    from livemosaic.core.overview_build import MosaicOverviews

    return IngestPipeline(
        catalog,
        source,
        journal,
        Ingestor(catalog, source, data_folders),
        trigger,
        registry,
        overviews=RasterioOverviewBuilder(Confinement.of(data_folders)),
        writers=open_for_writing,
        events=events,
        mosaic_overviews=MosaicOverviews(catalog, source, CogTileWriter(), data_folders),
        # a journal shared by several processes locks a dataset's batches across them
        batch_lock=getattr(journal, "batch", None),
    )


__all__ = ["FolderWatcher", "build_pipeline", "open_for_writing"]
