"""Envelopes as clients send them: ``bbox`` text, envelope JSON, geometry envelopes.

ArcGIS Server orders an envelope's corners itself: esri-leaflet's ``imageMapLayer`` sends
``bbox=xmin,ymax,xmax,ymin``, and envelope JSON with min and max swapped is drawn as the same
box. :func:`ordered_extent` is the one place that does this for every envelope livemosaic
reads (``bbox`` of exportImage, the ``geometry`` envelopes of query, identify, getSamples and
computeHistograms). What no ordering can repair is refused with a 400 naming the parameter:
a coordinate that is not a finite number, or a box of zero width or height.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from livemosaic.core.models import Extent, SpatialRef
from livemosaic.errors import InvalidParameter
from livemosaic.rest.params import parse_json, split_numbers, sr_from_json

ENVELOPE_KEYS = ("xmin", "ymin", "xmax", "ymax")
BBOX_ACCEPTED = (
    "xmin,ymin,xmax,ymax (corners in any order) or an envelope JSON "
    '{"xmin":..,"ymin":..,"xmax":..,"ymax":..,"spatialReference":..}'
)


def ordered_extent(values: Sequence[float], name: str, accepted: str = BBOX_ACCEPTED) -> Extent:
    """The box spanned by two corners ``x1, y1, x2, y2`` given in any order.

    Refuses non-finite numbers and boxes without area (zero width or height).
    """
    if len(values) != 4:
        raise InvalidParameter(name, f"{len(values)} numbers given, 4 expected.", accepted=accepted)
    for key, value in zip(ENVELOPE_KEYS, values, strict=True):
        if not math.isfinite(value):
            raise InvalidParameter(name, f"{key} is not a finite number.", accepted=accepted)
    x1, y1, x2, y2 = (float(v) for v in values)
    ext = Extent(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    if ext.width == 0 or ext.height == 0:
        side = "width" if ext.width == 0 else "height"
        raise InvalidParameter(
            name,
            f"the envelope has zero {side} (xmin {ext.xmin:g}, ymin {ext.ymin:g}, "
            f"xmax {ext.xmax:g}, ymax {ext.ymax:g}); send a box with an area.",
            accepted=accepted,
        )
    return ext


def envelope_from_json(
    value: Any, name: str, accepted: str = BBOX_ACCEPTED
) -> tuple[Extent, SpatialRef | None]:
    """An envelope object (corners in any order) with its optional spatialReference."""
    if not isinstance(value, dict):
        raise InvalidParameter(name, "an envelope must be a JSON object.", accepted=accepted)
    lowered = {str(k).lower(): v for k, v in value.items()}
    coords: list[float] = []
    for key in ENVELOPE_KEYS:
        v = lowered.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InvalidParameter(name, f"{key} is missing or not a number.", accepted=accepted)
        coords.append(float(v))
    sr = None
    if lowered.get("spatialreference") is not None:
        sr = sr_from_json(lowered["spatialreference"], name)
    return ordered_extent(coords, name, accepted), sr


def parse_bbox(text: str | None, name: str = "bbox") -> tuple[Extent, SpatialRef | None] | None:
    """A bbox as four numbers or an envelope JSON (whose spatialReference acts as bboxSR)."""
    if text is None:
        return None
    if text.lstrip().startswith("{"):
        return envelope_from_json(parse_json(text, name, BBOX_ACCEPTED), name)
    return ordered_extent(split_numbers(text, name, BBOX_ACCEPTED), name), None


def envelope_from_text(text: str, name: str, accepted: str) -> Extent:
    """``x1,y1,x2,y2`` (corners in any order) as an extent."""
    return ordered_extent(split_numbers(text, name, accepted), name, accepted)


__all__ = [
    "BBOX_ACCEPTED",
    "ENVELOPE_KEYS",
    "envelope_from_json",
    "envelope_from_text",
    "ordered_extent",
    "parse_bbox",
]
