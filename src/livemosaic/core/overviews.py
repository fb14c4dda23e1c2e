"""Which overview tiles draw an image, when a dataset has mosaic-level overviews.

An image is drawn from overviews (see :mod:`livemosaic.core.overview_grid`) when all of this
holds; otherwise from the items, capped at ``maxMosaicImageCount``:

* the request's cell size, in dataset units, is at least the first level's (``factor`` times
  the items' own); the level drawn is the coarsest whose cell size is not coarser than the
  request's, and the tiles' own internal overviews serve the sizes between levels;
* the request draws what the overviews hold: the mosaic of every item with the First
  operation — no ``where``, ``fids``, lock ids or ``time``; any mosaic method (as ArcGIS,
  overviews are drawn whatever the method);
* the dataset is not multidimensional: overviews hold no variable or slice, so
  multidimensional datasets are always drawn from their items;
* no part of the request's area is being rebuilt after a change of the catalog.
"""

from __future__ import annotations

from livemosaic.core.models import Extent, RasterItem, ServiceSnapshot
from livemosaic.core.mosaic_rules import MosaicRule
from livemosaic.core.overview_grid import MIN_FACTOR, OverviewSettings, overview_dataset_name
from livemosaic.core.ports import CatalogStore, ItemQuery
from livemosaic.core.where_ast import And, Compare, Const, Field, Literal_
from livemosaic.errors import DatasetNotFound

_TOLERANCE = 1e-6


def load_settings(catalog: CatalogStore, dataset: str) -> OverviewSettings | None:
    """A dataset's overview settings (None when it has none)."""
    try:
        companion = catalog.get_dataset(overview_dataset_name(dataset))
    except DatasetNotFound:
        return None
    return OverviewSettings.from_text(companion.description)


def draws_overviews(
    snapshot: ServiceSnapshot, rule: MosaicRule, time: tuple[int | None, int | None] | None
) -> bool:
    """True when a request with this rule and time may be drawn from overviews."""
    if time is not None or snapshot.summary.variables:
        return False
    if rule.where is not None and not (isinstance(rule.where, Const) and rule.where.value):
        return False
    if rule.fids or rule.method == "LockRaster" or rule.dimensions:
        return False
    return rule.operation == "First"


def level_where(ps: float) -> And:
    """A catalog condition keeping the overview items of the level of cell size ``ps``."""
    low = Field("LowPS")
    return And(
        (
            Compare(">=", low, Literal_(ps * (1 - _TOLERANCE))),
            Compare("<=", low, Literal_(ps * (1 + _TOLERANCE))),
        )
    )


def overview_items(
    catalog: CatalogStore,
    snapshot: ServiceSnapshot,
    rule: MosaicRule,
    extent: Extent,
    pixel_size: float,
    time: tuple[int | None, int | None] | None,
) -> list[RasterItem] | None:
    """The overview tiles drawing ``extent`` (dataset CRS) at ``pixel_size`` (dataset units),
    or None when the image is drawn from the items (see the module docstring)."""
    if not draws_overviews(snapshot, rule, time):
        return None
    finest = snapshot.summary.min_cell_size_x
    if finest and pixel_size < MIN_FACTOR * finest * (1 - 1e-9):
        # no level is finer than twice the items' finest cell: the items draw this image,
        # known without reading the settings (at worst, after finer items were removed,
        # a level that could have drawn it is left unused)
        return None
    settings = load_settings(catalog, snapshot.dataset.name)
    if settings is None:
        return None
    level = settings.level_for(pixel_size)
    if level < 0 or settings.is_dirty(extent):
        return None
    query = ItemQuery(
        extent=extent,
        where=level_where(settings.level_ps(level)),
        order_by=(("OBJECTID", True),),
    )
    return catalog.find_items(overview_dataset_name(snapshot.dataset.name), query)


__all__ = ["draws_overviews", "level_where", "load_settings", "overview_items"]
