"""The catalog fields clients see, with ArcGIS mosaic-dataset names and types.

``CATALOG_FIELDS`` is the one list of queryable attributes; the REST layer renders it as the
service ``fields`` and catalog stores map each name to a column. ``item_attributes`` gives an
item's values keyed by these names (dates in epoch ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from livemosaic.core.models import RasterItem

FieldType = Literal[
    "esriFieldTypeOID",
    "esriFieldTypeString",
    "esriFieldTypeInteger",
    "esriFieldTypeDouble",
    "esriFieldTypeDate",
]


@dataclass(frozen=True, slots=True)
class CatalogField:
    """A queryable catalog attribute."""

    name: str
    type: FieldType
    length: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The ArcGIS field JSON (7.6)."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "alias": self.name,
            "domain": None,
        }
        if self.length is not None:
            out["length"] = self.length
        return out


OBJECTID = "OBJECTID"

CATALOG_FIELDS: tuple[CatalogField, ...] = (
    CatalogField(OBJECTID, "esriFieldTypeOID"),
    CatalogField("Name", "esriFieldTypeString", 200),
    CatalogField("MinPS", "esriFieldTypeDouble"),
    CatalogField("MaxPS", "esriFieldTypeDouble"),
    CatalogField("LowPS", "esriFieldTypeDouble"),
    CatalogField("HighPS", "esriFieldTypeDouble"),
    CatalogField("Category", "esriFieldTypeInteger"),
    CatalogField("Tag", "esriFieldTypeString", 100),
    CatalogField("GroupName", "esriFieldTypeString", 100),
    CatalogField("ProductName", "esriFieldTypeString", 100),
    CatalogField("CenterX", "esriFieldTypeDouble"),
    CatalogField("CenterY", "esriFieldTypeDouble"),
    CatalogField("ZOrder", "esriFieldTypeInteger"),
    CatalogField("Shape_Length", "esriFieldTypeDouble"),
    CatalogField("Shape_Area", "esriFieldTypeDouble"),
    CatalogField("AcquisitionDate", "esriFieldTypeDate", 8),
    CatalogField("StdTime", "esriFieldTypeDate", 8),
    CatalogField("StdTimeEnd", "esriFieldTypeDate", 8),
    CatalogField("Variable", "esriFieldTypeString", 100),
    CatalogField("Dimensions", "esriFieldTypeString", 200),
    CatalogField("StdZ", "esriFieldTypeDouble"),
    CatalogField("BandCount", "esriFieldTypeInteger"),
    CatalogField("PixelType", "esriFieldTypeString", 10),
    CatalogField("DateAdded", "esriFieldTypeDate", 8),
)

FIELDS_BY_LOWER: dict[str, CatalogField] = {f.name.lower(): f for f in CATALOG_FIELDS}

# statistics other than count take the numbers of fields of these types
NUMERIC_FIELD_TYPES: frozenset[FieldType] = frozenset(
    {"esriFieldTypeOID", "esriFieldTypeInteger", "esriFieldTypeDouble", "esriFieldTypeDate"}
)
NUMERIC_FIELDS: frozenset[str] = frozenset(
    f.name for f in CATALOG_FIELDS if f.type in NUMERIC_FIELD_TYPES
)


def resolve_field(name: str) -> CatalogField | None:
    """The field with this name, matched case-insensitively (None if unknown)."""
    return FIELDS_BY_LOWER.get(name.strip().strip('"').lower())


def _ring_length_area(ring: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    length = 0.0
    area = 0.0
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        length += math.hypot(x2 - x1, y2 - y1)
        area += x1 * y2 - x2 * y1
    return length, abs(area) / 2.0


def item_attributes(item: RasterItem) -> dict[str, Any]:
    """An item's catalog attributes keyed by field name."""
    length, area = _ring_length_area(item.footprint)
    cx, cy = item.extent.center
    dims = ["StdTime"] if item.time is not None and item.variable else []
    dims += list(item.dimensions)
    return {
        OBJECTID: item.id,
        "Name": item.name,
        "MinPS": item.min_ps,
        "MaxPS": item.max_ps,
        "LowPS": item.low_ps,
        "HighPS": item.high_ps,
        "Category": 1,
        "Tag": str(item.attributes.get("Tag", "Dataset")),
        "GroupName": str(item.attributes.get("GroupName", "")),
        "ProductName": str(item.attributes.get("ProductName", "")),
        "CenterX": cx,
        "CenterY": cy,
        "ZOrder": item.attributes.get("ZOrder"),
        "Shape_Length": length,
        "Shape_Area": area,
        "AcquisitionDate": item.time,
        "StdTime": item.time,
        "StdTimeEnd": item.end_time if item.end_time is not None else item.time,
        "Variable": item.variable,
        "Dimensions": ",".join(dims) if dims else None,
        "StdZ": item.dimensions.get("StdZ"),
        "BandCount": item.band_count,
        "PixelType": item.pixel_type,
        "DateAdded": item.date_added,
    }
