"""Building and keeping current a mosaic dataset's overviews (ArcGIS Build Overviews).

:class:`MosaicOverviews` renders the tiles of every level (level 0 from the items, each next
level from the one below), writes each as a COG through an :class:`OverviewWriter` into the
dataset's overview folder (inside a data folder, so the raster confinement lets it be read)
and catalogues it in the companion dataset (:mod:`livemosaic.core.overview_grid`).

After a change of the catalog the ingest pipeline calls :meth:`MosaicOverviews.invalidate`
*before* committing (the changed area is marked dirty, so requests there are drawn from the
items from that moment on) and :meth:`MosaicOverviews.update` after it: only the tiles that
intersect the dirty areas are rebuilt, level by level, then the marks are cleared — all before
the pipeline asks for Refresh Service. A tile whose area holds no valid pixel is not written.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from livemosaic.core.compose import make_compositor
from livemosaic.core.models import Extent, MosaicDataset, RasterItem
from livemosaic.core.mosaic_rules import MosaicRule, order_items
from livemosaic.core.overview_grid import (
    MIN_FACTOR,
    OVERVIEW_CATEGORY,
    OVERVIEW_FOLDER,
    OVERVIEW_TAG,
    OverviewSettings,
    grow,
    is_level_folder,
    is_tile_file,
    level_count,
    level_folder_name,
    overview_dataset_name,
    tile_file_name,
    tile_name,
)
from livemosaic.core.overviews import level_where, load_settings
from livemosaic.core.ports import (
    CatalogStore,
    InspectOptions,
    ItemQuery,
    PixelBlock,
    RasterSource,
    ReadRequest,
    RemoveFilter,
)
from livemosaic.core.where_ast import Compare, Field, Literal_
from livemosaic.errors import DatasetNotFound, InvalidParameter, RasterUnavailable

log = logging.getLogger(__name__)


class OverviewWriter(Protocol):
    """Writes one overview tile as a Cloud-Optimized GeoTIFF (an adapter)."""

    def write_tile(self, path: str, block: PixelBlock, extent: Extent, crs: str) -> None:
        """Write ``block`` (valid pixels only; the rest transparent) covering ``extent``."""
        ...


@dataclass(slots=True)
class OverviewReport:
    """What a build or update did."""

    dataset: str
    levels: int = 0
    written: int = 0  # tiles written
    removed: int = 0  # tiles removed (replaced or emptied)
    seconds: float = 0.0


class MosaicOverviews:
    """Builds, updates and removes the overviews of mosaic datasets."""

    def __init__(
        self,
        catalog: CatalogStore,
        source: RasterSource,
        writer: OverviewWriter,
        data_folders: Sequence[Path],
    ) -> None:
        self.catalog = catalog
        self.source = source
        self.writer = writer
        self.data_folders = [Path(os.path.realpath(p)) for p in data_folders]

    # -- settings --------------------------------------------------------------------------
    def settings(self, dataset: str) -> OverviewSettings | None:
        """A dataset's overview settings, None when it has none."""
        return load_settings(self.catalog, dataset)

    def configure(
        self,
        dataset: str,
        *,
        auto: bool | None = None,
        factor: int | None = None,
        tile_size: int | None = None,
        min_items: int | None = None,
    ) -> OverviewSettings:
        """Create or change a dataset's overview settings (None keeps a value)."""
        ds = self.catalog.get_dataset(dataset)
        current = self.settings(ds.name) or OverviewSettings(folder=self._folder(ds.name))
        updated = replace(
            current,
            auto=current.auto if auto is None else auto,
            factor=current.factor if factor is None else factor,
            tile_size=current.tile_size if tile_size is None else tile_size,
            min_items=current.min_items if min_items is None else min_items,
        )
        if updated.factor < MIN_FACTOR or updated.tile_size < 64 or updated.min_items < 0:
            raise InvalidParameter(
                "overviews",
                "the factor must be at least 2, the tile size at least 64 pixels and the "
                "item trigger at least 0.",
            )
        if (updated.factor, updated.tile_size) != (current.factor, current.tile_size):
            updated = replace(updated, levels=0, base_ps=0.0)  # the grid changes: rebuild
        self._save(ds.name, updated)
        return updated

    def _folder(self, dataset: str) -> str:
        if not self.data_folders:
            raise InvalidParameter(
                "overviews",
                "no data folder is registered to write overviews into.",
                accepted="LIVEMOSAIC_DATA_FOLDERS with a writable folder",
            )
        return str(self.data_folders[0] / OVERVIEW_FOLDER / dataset.casefold())

    def _save(self, dataset: str, settings: OverviewSettings) -> None:
        name = overview_dataset_name(dataset)
        try:
            companion = self.catalog.get_dataset(name)
        except DatasetNotFound:
            crs = self.catalog.get_dataset(dataset).crs
            companion = self.catalog.create_dataset(
                MosaicDataset(name=name, crs=crs, history_enabled=False)
            )
        if OverviewSettings.from_text(companion.description) is None and companion.description:
            raise InvalidParameter(
                "dataset",
                f"'{name}' is a dataset of its own, not the overviews of '{dataset}'.",
            )
        self.catalog.update_dataset(replace(companion, description=settings.to_text()))

    # -- dirty areas -----------------------------------------------------------------------
    def invalidate(self, dataset: str, areas: Sequence[Extent] | None = None) -> bool:
        """Mark areas (None: everything) as changed; True when the dataset has overviews."""
        settings = self.settings(dataset)
        if settings is None or settings.levels == 0:
            return False
        if areas is None:
            extent = self.catalog.summary(dataset).extent
            areas = [] if extent is None else [extent]
        if areas:
            self._save(dataset, settings.with_dirty(list(areas)))
        return True

    def due(self, dataset: str) -> bool:
        """True when an automatic build or update is due for a dataset."""
        settings = self.settings(dataset)
        if settings is None or not settings.auto:
            return False
        if settings.levels == 0:
            return self.catalog.summary(dataset).item_count > settings.min_items
        return bool(settings.dirty)

    def update(self, dataset: str) -> OverviewReport | None:
        """Build or rebuild what is due (see :meth:`due`); None when nothing is."""
        if not self.due(dataset):
            return None
        settings = self.settings(dataset)
        assert settings is not None
        if settings.levels == 0:
            return self.build(dataset)
        return self._rebuild(dataset, settings, list(settings.dirty))

    # -- building --------------------------------------------------------------------------
    def build(self, dataset: str) -> OverviewReport:
        """Build every level anew (removing the previous tiles)."""
        ds = self.catalog.get_dataset(dataset)
        if self.catalog.summary(ds.name).variables:
            raise InvalidParameter(
                "dataset",
                f"'{ds.name}' is multidimensional; its images are always drawn from its items "
                "(overviews hold no variable or slice).",
            )
        self.remove(ds.name, keep_settings=True)
        settings = self.settings(ds.name) or OverviewSettings(folder=self._folder(ds.name))
        summary = self.catalog.summary(ds.name)
        if summary.extent is None or not summary.min_cell_size_x:
            self._save(ds.name, replace(settings, levels=0, dirty=()))
            return OverviewReport(ds.name)
        settings = replace(settings, base_ps=summary.min_cell_size_x, dirty=())
        settings = replace(settings, levels=level_count(settings, summary.extent))
        # marked dirty while building: nothing draws half-built levels
        self._save(ds.name, replace(settings, dirty=(summary.extent,)))
        return self._rebuild(ds.name, settings, [summary.extent])

    def _rebuild(
        self, dataset: str, settings: OverviewSettings, areas: list[Extent]
    ) -> OverviewReport:
        started = time.perf_counter()
        ds = self.catalog.get_dataset(dataset)
        summary = self.catalog.summary(dataset)
        report = OverviewReport(dataset)
        handled = [*areas, *settings.dirty]
        if summary.extent is not None:
            wanted = level_count(settings, summary.extent)
            if wanted != settings.levels:  # the extent grew (or shrank): top levels change
                areas = [summary.extent]
                settings = replace(settings, levels=wanted)
            # only where there are items (EVERYWHERE included)
            areas = [c for a in areas if (c := a.intersection(summary.extent)) is not None]
        else:
            areas = []
        nw = (summary.extent.xmin, summary.extent.ymax) if summary.extent else None
        for level in range(settings.levels):
            pad = 2 * settings.level_ps(level)
            done: set[tuple[int, int]] = set()
            new: list[RasterItem] = []
            old: list[int] = []
            for area in areas:
                for col, row, tile in settings.tiles(level, grow(area, pad)):
                    if (col, row) in done:
                        continue
                    done.add((col, row))
                    item = self._tile(ds, settings, level, col, row, tile, nw)
                    old.extend(self._existing(dataset, level, col, row))
                    if item is not None:
                        new.append(item)
            self._swap(dataset, new, old)
            report.written += len(new)
            report.removed += len(old)
        # the levels a shrunken extent no longer has
        stale = self.catalog.find_items(
            overview_dataset_name(dataset),
            ItemQuery(where=Compare(">", Field("LowPS"), Literal_(_top(settings)))),
        )
        self._swap(dataset, [], [it.id for it in stale if it.id is not None])
        current = self.settings(dataset) or settings
        left = tuple(d for d in current.dirty if d not in handled)
        self._save(dataset, replace(settings, dirty=left))
        report.levels = settings.levels
        report.seconds = time.perf_counter() - started
        log.info(
            "overviews of '%s': %d levels, %d tiles written, %d removed in %.1f s",
            dataset,
            report.levels,
            report.written,
            report.removed,
            report.seconds,
        )
        return report

    def _sources(
        self, dataset: MosaicDataset, settings: OverviewSettings, level: int, tile: Extent
    ) -> list[RasterItem]:
        if level == 0:
            return self.catalog.find_items(dataset.name, ItemQuery(extent=tile))
        below = level_where(settings.level_ps(level - 1))
        return self.catalog.find_items(
            overview_dataset_name(dataset.name), ItemQuery(extent=tile, where=below)
        )

    def _tile(
        self,
        ds: MosaicDataset,
        settings: OverviewSettings,
        level: int,
        col: int,
        row: int,
        tile: Extent,
        nw: tuple[float, float] | None,
    ) -> RasterItem | None:
        """Render, write and inspect one tile; None when its area holds no valid pixel."""
        items = self._sources(ds, settings, level, tile)
        if level == 0:
            items = order_items(items, MosaicRule(), tile.center, nw)
        size = settings.tile_size
        read = ReadRequest(tile, ds.crs, size, size, "bilinear")
        bands = max((it.band_count for it in items), default=0)
        if not items or bands == 0:
            return None
        comp = make_compositor("First", bands, size, size)
        fed = False
        for item in items:
            if comp.done:
                break
            try:
                block = self.source.read(item, read)
            except RasterUnavailable as exc:
                log.warning("overviews: skipping item %s (%s): %s", item.id, exc.path, exc.cause)
                continue
            if block is not None and comp.feed(block, owned=True):
                fed = True
        if not fed:
            return None
        block = comp.result()
        folder = Path(settings.folder) / level_folder_name(level)
        folder.mkdir(parents=True, exist_ok=True)
        path = str(folder / tile_file_name(col, row, time.time_ns()))
        self.writer.write_tile(path, block, tile, ds.crs)
        options = InspectOptions(ds.crs, validate_pixels=False, compute_stats=False)
        found = self.source.inspect(path, options)
        return replace(
            found[0],
            name=tile_name(level, col, row),
            attributes={
                "Category": OVERVIEW_CATEGORY,
                "Tag": OVERVIEW_TAG,
                "GroupName": f"Overview L{level}",
            },
        )

    def _existing(self, dataset: str, level: int, col: int, row: int) -> list[int]:
        where = Compare("=", Field("Name"), Literal_(tile_name(level, col, row)))
        found = self.catalog.find_items(overview_dataset_name(dataset), ItemQuery(where=where))
        return [it.id for it in found if it.id is not None]

    def _swap(self, dataset: str, new: list[RasterItem], old: list[int]) -> None:
        """Catalogue new tiles, then drop the replaced ones and their files."""
        name = overview_dataset_name(dataset)
        if new:
            self.catalog.add_items(name, new)
        if not old:
            return
        paths = [self.catalog.get_item(name, oid).path for oid in old]
        self.catalog.remove_items(name, RemoveFilter(object_ids=tuple(old)))
        for path in paths:
            try:
                os.remove(path)
            except OSError as exc:
                log.warning("overviews: %s not removed: %s", path, exc.strerror)

    # -- removing --------------------------------------------------------------------------
    def remove(self, dataset: str, *, keep_settings: bool = False) -> int:
        """Remove a dataset's overview tiles (and, unless ``keep_settings``, its settings);
        returns how many catalogued tiles were removed.

        The tile files go from the dataset's overview folders even when it has no settings:
        a dataset made anew under the name of one whose catalog is gone writes into the same
        folder, and :meth:`build` would otherwise leave the old tiles there for good.
        """
        settings = self.settings(dataset)
        name = overview_dataset_name(dataset)
        count = 0
        if settings is not None:
            count = self.catalog.count_items(name, ItemQuery())
            if keep_settings:
                every = Compare(">", Field("OBJECTID"), Literal_(0))
                self.catalog.remove_items(name, RemoveFilter(where=every))
                self._save(dataset, replace(settings, levels=0, base_ps=0.0, dirty=()))
            else:
                self.catalog.delete_dataset(name)
        for folder in self._folders(dataset, settings):
            _clear_tiles(folder)
        return count

    def _folders(self, dataset: str, settings: OverviewSettings | None) -> list[Path]:
        """The overview folders of a dataset: the one of its settings, and its own folder in
        every data folder (where an earlier catalog may have written)."""
        own = dataset.casefold()
        folders = [p / OVERVIEW_FOLDER / own for p in self.data_folders]
        if settings is not None and settings.folder and Path(settings.folder).name == own:
            folders.insert(0, Path(settings.folder))
        return list(dict.fromkeys(folders))


def _clear_tiles(folder: Path) -> None:
    """Delete the tile files livemosaic wrote in a dataset's overview folder (those named by
    :func:`~livemosaic.core.overview_grid.tile_file_name` in its level folders), then the
    folders left empty; any other file stays, and so do the folders that hold one."""
    if folder.is_symlink():
        return  # not a folder livemosaic made
    try:
        levels = [d for d in folder.iterdir() if is_level_folder(d.name)]
    except OSError:
        return  # no folder (or none readable): nothing of ours to delete
    for level in levels:
        if level.is_symlink() or not level.is_dir():
            continue
        for entry in level.iterdir():
            if is_tile_file(entry.name) and entry.is_file() and not entry.is_symlink():
                try:
                    entry.unlink()
                except OSError as exc:
                    log.warning("overviews: %s not removed: %s", entry, exc.strerror)
        _remove_if_empty(level)
    _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (a file livemosaic did not write), or already gone


def _top(settings: OverviewSettings) -> float:
    """A cell size just above the coarsest level's."""
    return settings.level_ps(settings.levels - 1) * 1.0001 if settings.levels else 0.0


__all__ = ["MosaicOverviews", "OverviewReport", "OverviewWriter"]
