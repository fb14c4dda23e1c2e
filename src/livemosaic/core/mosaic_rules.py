"""Mosaic rules: which catalog items take part in a request and in what priority.

``MosaicRule`` is the parsed ``mosaicRule`` (spec 7.4); ``order_items`` sorts candidate items
by the method (7.4.2) and ``MosaicRule.operation`` says how overlapping valid pixels combine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from livemosaic.core.ports import DimensionFilter
from livemosaic.core.where_ast import Condition

MosaicMethod = Literal[
    "None", "Center", "Nadir", "Viewpoint", "Attribute", "LockRaster", "Northwest", "Seamline"
]
MosaicOperation = Literal["First", "Last", "Min", "Max", "Mean", "Blend", "Sum"]

# ArcGIS wire names <-> domain names
METHOD_BY_WIRE: dict[str, MosaicMethod] = {
    "esrimosaicnone": "None",
    "esrimosaiccenter": "Center",
    "esrimosaicnadir": "Nadir",
    "esrimosaicviewpoint": "Viewpoint",
    "esrimosaicattribute": "Attribute",
    "esrimosaiclockraster": "LockRaster",
    "esrimosaicnorthwest": "Northwest",
    "esrimosaicseamline": "Seamline",
}
# names used in allowedMosaicMethods / defaultMosaicMethod
METHOD_BY_SERVICE_NAME: dict[str, MosaicMethod] = {
    "none": "None",
    "center": "Center",
    "nadir": "Nadir",
    "viewpoint": "Viewpoint",
    "byattribute": "Attribute",
    "lockraster": "LockRaster",
    "northwest": "Northwest",
    "seamline": "Seamline",
}
OPERATION_BY_WIRE: dict[str, MosaicOperation] = {
    "mt_first": "First",
    "mt_last": "Last",
    "mt_min": "Min",
    "mt_max": "Max",
    "mt_mean": "Mean",
    "mt_blend": "Blend",
    "mt_sum": "Sum",
}


@dataclass(frozen=True, slots=True)
class MosaicRule:
    """A parsed mosaic rule.

    ``sort_value`` for date fields is epoch ms. ``viewpoint`` is in the dataset CRS.
    """

    method: MosaicMethod = "Northwest"
    where: Condition | None = None
    sort_field: str | None = None
    sort_value: float | None = None
    ascending: bool = True
    lock_raster_ids: tuple[int, ...] = ()
    fids: tuple[int, ...] | None = None
    viewpoint: tuple[float, float] | None = None
    operation: MosaicOperation = "First"
    dimensions: tuple[DimensionFilter, ...] = ()
