"""Rendering rules (raster functions) applied to mosaicked pixel blocks (spec 7.5).

``RenderingRule`` is the parsed ``renderingRule``: a function name (canonical spelling),
its arguments, an optional output pixel type; an argument named ``Raster`` or ``DEM`` may
hold a nested rule, forming a chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from livemosaic.core.models import PixelType

SUPPORTED_FUNCTIONS = ("None", "Stretch", "Colormap", "ExtractBand", "Hillshade", "NDVI")


@dataclass(frozen=True, slots=True)
class RenderingRule:
    """A parsed raster function chain."""

    function: str  # one of SUPPORTED_FUNCTIONS, canonical case
    arguments: Mapping[str, Any] = field(default_factory=dict)
    output_pixel_type: PixelType | None = None
    raster: RenderingRule | None = None  # nested input rule (argument Raster / DEM)
