"""Thematic (classified) services: palette, raster attribute table, legend classes, defaults.

A one-band service is thematic when its first item (lowest OBJECTID) carries a palette or a
raster attribute table — ArcGIS takes a mosaic dataset's colormap and attribute table from
its rasters the same way. The raster adapter stores them in the item's attributes under
:data:`COLORMAP_KEY`, :data:`RAT_KEY` and :data:`CLASSES_KEY` at ingest.

What follows for a thematic service (as in ArcGIS):

* ``hasColormap`` when a palette, or Red/Green/Blue columns of the table, give colours;
  ``hasRasterAttributeTable`` when there is a table;
* exports resample with nearest neighbour unless the request (``interpolation``) or the
  service (``defaultResamplingMethod``) says otherwise: interpolating class codes invents
  classes;
* exports are drawn with the colours unless the request has a ``renderingRule`` (an explicit
  ``{"rasterFunction": "None"}`` gives the raw class codes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livemosaic.core.models import DatasetSummary, RasterItem
from livemosaic.core.ports import CatalogStore, ItemQuery, Resampling
from livemosaic.core.rendering import RenderingRule

COLORMAP_KEY = "colormap"
RAT_KEY = "rasterAttributeTable"
CLASSES_KEY = "classes"
THEMATIC_RESAMPLING: Resampling = "nearest"
LABEL_NAMES = ("classname", "class_name", "class", "name", "label", "description")


@dataclass(frozen=True, slots=True)
class RatField:
    """A column of a raster attribute table (type integer, real or string; GDAL usage)."""

    name: str
    type: str
    usage: str = "Generic"


@dataclass(frozen=True, slots=True)
class AttributeTable:
    """A raster attribute table: one row per class."""

    fields: tuple[RatField, ...]
    rows: tuple[tuple[Any, ...], ...]

    def _column(self, usage: str, names: Sequence[str] = ()) -> int | None:
        for i, f in enumerate(self.fields):
            if f.usage.lower() == usage.lower():
                return i
        for i, f in enumerate(self.fields):
            if f.name.lower() in names:
                return i
        return None

    def value_column(self) -> int | None:
        """The column holding the class value (usage MinMax, else a field named Value)."""
        return self._column("MinMax", ("value",))

    def values(self) -> list[int | None]:
        """The class value of each row (None where it is not a number)."""
        col = self.value_column()
        out: list[int | None] = []
        for row in self.rows:
            cell = row[col] if col is not None and col < len(row) else None
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                out.append(int(cell))
            else:
                out.append(None)
        return out

    def labels(self) -> dict[int, str]:
        """Class value -> its name (usage Name, else a ClassName-like field)."""
        col = self._column("Name", LABEL_NAMES)
        if col is None:
            return {}
        return {v: str(row[col]) for v, row in zip(self.values(), self.rows, strict=True)
                if v is not None and col < len(row) and row[col] not in (None, "")}  # fmt: skip

    def colours(self) -> list[tuple[int, int, int, int]]:
        """(value, red, green, blue) from the Red/Green/Blue columns (0..1 reals scaled)."""
        cols = [self._column(c, (c.lower(),)) for c in ("Red", "Green", "Blue")]
        if any(c is None for c in cols):
            return []
        picked = [[row[c] if c is not None and c < len(row) else None for c in cols]
                  for row in self.rows]  # fmt: skip
        numbers = [x for rgb in picked for x in rgb if isinstance(x, int | float)]
        unit = (
            bool(numbers)
            and all(0 <= x <= 1 for x in numbers)
            and any(isinstance(x, float) and not float(x).is_integer() for x in numbers)
        )
        out: list[tuple[int, int, int, int]] = []
        scale = 255.0 if unit else 1.0
        for value, rgb in zip(self.values(), picked, strict=True):
            nums = [float(x) for x in rgb if isinstance(x, int | float)]
            if value is None or len(nums) != 3:
                continue
            r, g, b = (max(0, min(255, round(x * scale))) for x in nums)
            out.append((value, r, g, b))
        return out

    @staticmethod
    def from_json(value: Any) -> AttributeTable | None:
        """The table stored in an item's attributes (None when malformed)."""
        if not isinstance(value, Mapping):
            return None
        try:
            fields = tuple(
                RatField(str(f["name"]), str(f.get("type", "string")), str(f.get("usage", "")))
                for f in value.get("fields", [])
            )
            rows = tuple(tuple(r) for r in value.get("rows", []))
        except (TypeError, KeyError, AttributeError):
            return None
        return AttributeTable(fields, rows) if fields else None


@dataclass(frozen=True, slots=True)
class LegendClass:
    """One class of a thematic legend."""

    value: int
    label: str
    rgb: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Thematic:
    """The palette, attribute table and classes of a thematic service."""

    palette: tuple[tuple[int, int, int, int], ...] = ()  # (value, red, green, blue)
    table: AttributeTable | None = None
    classes: tuple[int, ...] = ()  # the values present (empty: unknown)

    @property
    def colormap(self) -> tuple[tuple[int, int, int, int], ...]:
        """The colours of the classes: the palette, else the table's Red/Green/Blue."""
        if self.palette:
            return self.palette
        return tuple(self.table.colours()) if self.table is not None else ()

    def legend(self) -> list[LegendClass]:
        """The classes to show: the table's rows, else the palette entries present."""
        colours = {v: (r, g, b) for v, r, g, b in self.colormap}
        if self.table is not None:
            labels = self.table.labels()
            values = [v for v in self.table.values() if v is not None]
        else:
            labels = {}
            present = set(self.classes)
            values = [v for v, *_ in self.colormap if not present or v in present]
        return [LegendClass(v, labels.get(v, str(v)), colours.get(v, (128, 128, 128)))
                for v in dict.fromkeys(values)]  # fmt: skip

    def palette_rule(self) -> RenderingRule | None:
        """The rendering rule that draws the classes in their colours (None without them)."""
        entries = [list(entry) for entry in self.colormap]
        return RenderingRule("Colormap", {"Colormap": entries}) if entries else None


def thematic_of_item(item: RasterItem) -> Thematic | None:
    """The thematic description an item carries (None for a non-thematic item)."""
    if item.band_count != 1:
        return None
    attrs = item.attributes
    palette: list[tuple[int, int, int, int]] = []
    for entry in attrs.get(COLORMAP_KEY) or ():
        try:
            v, r, g, b = (int(x) for x in list(entry)[:4])
        except (TypeError, ValueError):
            continue
        palette.append((v, r, g, b))
    table = AttributeTable.from_json(attrs.get(RAT_KEY))
    if not palette and table is None:
        return None
    raw_classes = attrs.get(CLASSES_KEY) or ()
    classes = tuple(int(v) for v in raw_classes if isinstance(v, int) and not isinstance(v, bool))
    return Thematic(tuple(palette), table, classes)


def may_be_thematic(summary: DatasetSummary) -> bool:
    """False when a dataset cannot be thematic (not one band, empty, or multidimensional):
    then no catalog row needs to be read to know it."""
    return summary.band_count == 1 and summary.item_count > 0 and not summary.variables


def thematic_of(catalog: CatalogStore, dataset: str, summary: DatasetSummary) -> Thematic | None:
    """The thematic description of a dataset's service: its first item's (one catalog row)."""
    if not may_be_thematic(summary):
        return None
    first = catalog.find_items(dataset, ItemQuery(limit=1))
    return thematic_of_item(first[0]) if first else None


__all__ = [
    "CLASSES_KEY",
    "COLORMAP_KEY",
    "RAT_KEY",
    "THEMATIC_RESAMPLING",
    "AttributeTable",
    "LegendClass",
    "RatField",
    "Thematic",
    "may_be_thematic",
    "thematic_of",
    "thematic_of_item",
]
