"""Mosaic-dataset overviews: their settings and the tile grid of every level.

Like ArcGIS's Build Overviews, a mosaic dataset's overviews are lower-resolution mosaics of its
items, stored as Cloud-Optimized GeoTIFF tiles and catalogued as items of their own
(``Category`` 2, ``Tag`` "Overview"). They live in a companion dataset of the catalog,
:func:`overview_dataset_name`, so they never count among the dataset's items, never change its
summary (extent, cell sizes, statistics, item count) and never show up in its ``query``
results; the companion's description holds the :class:`OverviewSettings` as JSON.

Level ``k`` (0 = finest) has the cell size ``base_ps * factor ** (k + 1)``, where ``base_ps`` is
the items' finest cell size when the overviews were first built; its tiles are
``tile_size`` pixels square on a grid anchored at the CRS origin, so a tile of level ``k + 1``
covers exactly ``factor`` x ``factor`` tiles of level ``k`` and a change of the catalog touches
a known set of tiles. Levels are added until the dataset's extent fits in one tile's width.

``dirty`` lists the areas whose tiles are being rebuilt: a request that touches one is drawn
from the items themselves, so overviews are never drawn stale.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from livemosaic.core.models import Extent

OVERVIEW_SUFFIX = "__overviews"
OVERVIEW_CATEGORY = 2  # ArcGIS catalog Category of overview items (1 = primary)
OVERVIEW_TAG = "Overview"
OVERVIEW_FOLDER = ".overviews"  # per data folder; hidden, so never ingested or watched
DEFAULT_FACTOR = 3  # ArcGIS's default overview sampling factor
MIN_FACTOR = 2  # the smallest factor: level 0 is at least twice as coarse as the items
DEFAULT_TILE_SIZE = 1024
DEFAULT_MIN_ITEMS = 20  # the default maxMosaicImageCount: more items than one image draws
MAX_DIRTY = 64  # dirty areas kept apart; more are merged into their union
# a dirty area covering any extent: marks everything before a change whose area is unknown
EVERYWHERE = Extent(-1e300, -1e300, 1e300, 1e300)
_MARK = "livemosaicOverviews"


def overview_dataset_name(dataset: str) -> str:
    """The name of the companion dataset holding a dataset's overview items."""
    return f"{dataset}{OVERVIEW_SUFFIX}"


def is_overview_dataset(name: str) -> bool:
    """True for a companion dataset of overviews (hidden from dataset listings)."""
    return name.endswith(OVERVIEW_SUFFIX)


@dataclass(frozen=True, slots=True)
class OverviewSettings:
    """How a dataset's overviews are built and kept current.

    ``auto``: rebuild the changed area after every ingest (and build them once the dataset
    holds more than ``min_items`` items). ``levels`` is 0 until they are built.
    """

    auto: bool = True
    factor: int = DEFAULT_FACTOR
    tile_size: int = DEFAULT_TILE_SIZE
    min_items: int = DEFAULT_MIN_ITEMS
    folder: str = ""  # where the tiles are written
    base_ps: float = 0.0  # the items' finest cell size (dataset units) at the first build
    levels: int = 0
    dirty: tuple[Extent, ...] = field(default_factory=tuple)

    def level_ps(self, level: int) -> float:
        """The cell size of a level (dataset units)."""
        return self.base_ps * float(self.factor) ** (level + 1)

    def tile_span(self, level: int) -> float:
        """The side of one tile of a level (dataset units)."""
        return self.level_ps(level) * self.tile_size

    def level_for(self, pixel_size: float) -> int:
        """The level to draw a request of this pixel size from: the coarsest whose cell size
        is not coarser than the request (GDAL's rule); -1 when the items themselves are."""
        if self.levels <= 0 or not (self.base_ps > 0 and pixel_size > 0):
            return -1
        level = -1
        for k in range(self.levels):
            if self.level_ps(k) <= pixel_size * (1 + 1e-9):
                level = k
        return level

    def tiles(self, level: int, area: Extent) -> Iterator[tuple[int, int, Extent]]:
        """(column, row, extent) of every tile of a level that intersects ``area``."""
        span = self.tile_span(level)
        i0, i1 = math.floor(area.xmin / span), math.ceil(area.xmax / span)
        j0, j1 = math.floor(area.ymin / span), math.ceil(area.ymax / span)
        for j in range(j0, max(j1, j0 + 1)):
            for i in range(i0, max(i1, i0 + 1)):
                yield i, j, Extent(i * span, j * span, (i + 1) * span, (j + 1) * span)

    def is_dirty(self, area: Extent) -> bool:
        """True when part of ``area`` is being rebuilt."""
        return any(d.intersects(area) for d in self.dirty)

    def with_dirty(self, areas: Sequence[Extent]) -> OverviewSettings:
        """These settings with more areas marked for rebuilding."""
        dirty = [*self.dirty, *(a for a in areas if a.is_valid())]
        if len(dirty) > MAX_DIRTY:
            merged = Extent.union_all(dirty)
            dirty = [merged] if merged is not None else []
        return replace(self, dirty=tuple(dirty))

    def to_text(self) -> str:
        """The JSON kept in the companion dataset's description."""
        return json.dumps(
            {
                _MARK: 1,
                "auto": self.auto,
                "factor": self.factor,
                "tileSize": self.tile_size,
                "minItems": self.min_items,
                "folder": self.folder,
                "basePs": self.base_ps,
                "levels": self.levels,
                "dirty": [[d.xmin, d.ymin, d.xmax, d.ymax] for d in self.dirty],
            }
        )

    @staticmethod
    def from_text(text: str) -> OverviewSettings | None:
        """Settings from a companion dataset's description (None when it holds none)."""
        try:
            raw: Any = json.loads(text)
        except ValueError:
            return None
        if not isinstance(raw, dict) or raw.get(_MARK) != 1:
            return None
        try:
            return OverviewSettings(
                auto=bool(raw.get("auto", True)),
                factor=max(MIN_FACTOR, int(raw.get("factor", DEFAULT_FACTOR))),
                tile_size=max(64, int(raw.get("tileSize", DEFAULT_TILE_SIZE))),
                min_items=max(0, int(raw.get("minItems", DEFAULT_MIN_ITEMS))),
                folder=str(raw.get("folder", "")),
                base_ps=float(raw.get("basePs", 0.0)),
                levels=max(0, int(raw.get("levels", 0))),
                dirty=tuple(Extent(*map(float, d)) for d in raw.get("dirty", [])),
            )
        except (TypeError, ValueError):
            return None


def level_count(settings: OverviewSettings, extent: Extent) -> int:
    """How many levels a dataset of this extent gets: until its extent fits in one tile's
    width at the coarsest level."""
    if settings.base_ps <= 0:
        return 0
    side = max(extent.width, extent.height)
    levels = 1
    while side / settings.level_ps(levels - 1) > settings.tile_size and levels < 32:
        levels += 1
    return levels


def tile_name(level: int, col: int, row: int) -> str:
    """The catalog Name of an overview tile."""
    return f"Ov_L{level}_{col}_{row}"


def level_folder_name(level: int) -> str:
    """The folder of a level's tile files, inside the dataset's overview folder."""
    return f"L{level}"


def tile_file_name(col: int, row: int, stamp: int) -> str:
    """The file name of an overview tile in its level's folder. ``stamp`` (when it was
    written, in ns) makes every rewrite a new file, so a reader never sees one change."""
    return f"{col}_{row}_{stamp:x}.tif"


_LEVEL_FOLDER = re.compile(r"L\d+")
# a tile, the writer's temporary file before it is renamed, GDAL's side file next to it
_TILE_FILE = re.compile(r"-?\d+_-?\d+_[0-9a-f]+\.tif(\.part|\.aux\.xml)?")


def is_level_folder(name: str) -> bool:
    """True for a folder name :func:`level_folder_name` makes."""
    return _LEVEL_FOLDER.fullmatch(name) is not None


def is_tile_file(name: str) -> bool:
    """True for a file name :func:`tile_file_name` makes (or the writer's temporary file or
    GDAL's side file of one): the only files livemosaic deletes from an overview folder."""
    return _TILE_FILE.fullmatch(name) is not None


def grow(area: Extent, by: float) -> Extent:
    """An extent grown by ``by`` on every side."""
    return Extent(area.xmin - by, area.ymin - by, area.xmax + by, area.ymax + by)


__all__ = [
    "DEFAULT_FACTOR",
    "EVERYWHERE",
    "DEFAULT_MIN_ITEMS",
    "DEFAULT_TILE_SIZE",
    "MIN_FACTOR",
    "OVERVIEW_CATEGORY",
    "OVERVIEW_FOLDER",
    "OVERVIEW_TAG",
    "OverviewSettings",
    "grow",
    "is_level_folder",
    "is_overview_dataset",
    "is_tile_file",
    "level_count",
    "level_folder_name",
    "overview_dataset_name",
    "tile_file_name",
    "tile_name",
]
