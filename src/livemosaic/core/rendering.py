"""Rendering rules (raster functions) applied to mosaicked pixel blocks (spec 7.5).

``RenderingRule`` is the parsed ``renderingRule``: a function name (canonical spelling),
its arguments, an optional output pixel type; an argument named ``Raster`` or ``DEM`` may
hold a nested rule, forming a chain. ``apply_rendering`` runs a chain on a pixel block; the
functions themselves live in :mod:`livemosaic.core.raster_functions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from livemosaic.core.models import BandStats, PixelType
from livemosaic.core.pixels import (
    apply_nodata,
    convert_pixel_type,
    display_bands,
    fill_invalid,
    select_bands,
    stretch_to_u8,
)
from livemosaic.core.ports import PixelBlock
from livemosaic.core.raster_functions import FUNCTIONS, FunctionContext, argument
from livemosaic.errors import NotSupported

SUPPORTED_FUNCTIONS = tuple(FUNCTIONS)


@dataclass(frozen=True, slots=True)
class FunctionTemplate:
    """A raster function a client may ask for by name alone (``rasterFunctionInfos``): it
    runs with its default arguments on services with ``min_bands``..``max_bands`` bands."""

    name: str
    description: str
    min_bands: int = 1
    max_bands: int | None = None

    def applies(self, band_count: int) -> bool:
        """True for a service with ``band_count`` bands."""
        upper = self.max_bands if self.max_bands is not None else band_count
        return self.min_bands <= band_count <= upper


# Stretch, Colormap and ExtractBand need arguments (a stretch type, a colour map, band ids):
# clients send them in a full rendering rule, so they are not offered by name.
TEMPLATES = (
    FunctionTemplate("None", "The mosaic's pixels as they are (no raster function)."),
    FunctionTemplate("Hillshade", "Shaded relief: azimuth 315°, altitude 45°.", 1, 1),
    FunctionTemplate("Slope", "Steepness of each pixel, in degrees.", 1, 1),
    FunctionTemplate("Aspect", "Direction of the steepest slope, degrees from north.", 1, 1),
    FunctionTemplate("NDVI", "(infrared - red) / (infrared + red): bands 1 and last.", 2),
)
assert all(t.name in FUNCTIONS for t in TEMPLATES)


def templates_for(band_count: int) -> list[FunctionTemplate]:
    """The templates a service with ``band_count`` bands offers (None always)."""
    return [t for t in TEMPLATES if t.name == "None" or t.applies(band_count)]


# functions that read the 3x3 neighbourhood of each pixel (requests read one pixel more)
NEIGHBOURHOOD_FUNCTIONS = frozenset({"Hillshade", "Slope", "Aspect"})


@dataclass(frozen=True, slots=True)
class RenderingRule:
    """A parsed raster function chain."""

    function: str  # one of SUPPORTED_FUNCTIONS, canonical case
    arguments: Mapping[str, Any] = field(default_factory=dict)
    output_pixel_type: PixelType | None = None
    raster: RenderingRule | None = None  # nested input rule (argument Raster / DEM)


_CANONICAL = {name.lower(): name for name in SUPPORTED_FUNCTIONS}


def canonical_function_name(name: str) -> str:
    """The canonical spelling of a supported raster function (NotSupported otherwise)."""
    key = (name or "").strip().lower()
    if key in _CANONICAL:
        return _CANONICAL[key]
    raise NotSupported(
        f"Raster function '{name}' is not supported.",
        next_step="Use one of: " + ", ".join(SUPPORTED_FUNCTIONS) + ".",
    )


def _chain(rule: RenderingRule) -> list[RenderingRule]:
    """The rules of a chain, innermost first."""
    out: list[RenderingRule] = []
    node: RenderingRule | None = rule
    while node is not None:
        out.append(node)
        node = node.raster
    return out[::-1]


def needs_neighbourhood(rule: RenderingRule | None) -> bool:
    """True when a function of the chain looks at neighbouring pixels (Hillshade, Slope,
    Aspect)."""
    if rule is None:
        return False
    return any(canonical_function_name(r.function) in NEIGHBOURHOOD_FUNCTIONS for r in _chain(rule))


def output_stats(
    rule: RenderingRule | None, band_stats: Sequence[BandStats | None]
) -> tuple[BandStats | None, ...]:
    """Statistics that still describe the bands after ``rule`` (empty when unknown / 8-bit)."""
    stats: tuple[BandStats | None, ...] = tuple(band_stats)
    if rule is None:
        return stats
    for node in _chain(rule):
        name = canonical_function_name(node.function)
        if name == "None":
            continue
        if name == "ExtractBand":
            ids = argument(node.arguments, "BandIds", None)
            try:
                idx = [int(v) for v in (ids.split(",") if isinstance(ids, str) else ids or [])]
            except (TypeError, ValueError, OverflowError):
                return ()
            stats = tuple(stats[i] if 0 <= i < len(stats) else None for i in idx)
        elif name == "NDVI":
            integer = bool(node.output_pixel_type) and not str(node.output_pixel_type).startswith(
                "F"
            )
            stats = (
                (BandStats(0.0, 200.0, 100.0, 50.0),)
                if integer
                else (BandStats(-1.0, 1.0, 0.0, 0.5),)
            )
        else:
            stats = ()
    return stats


def apply_rendering(
    block: PixelBlock,
    rule: RenderingRule | None,
    band_stats: Sequence[BandStats | None] = (),
    *,
    cell_size: tuple[float, float] = (1.0, 1.0),
    meters_per_unit: float = 1.0,
) -> PixelBlock:
    """Run a raster function chain (nested ``raster`` rules first) on a mosaicked block.

    ``band_stats`` describe the input bands (service statistics); ``cell_size`` is the pixel
    size in CRS units and ``meters_per_unit`` converts it to metres (Hillshade, Slope, Aspect).
    """
    if rule is None:
        return block
    stats: Sequence[BandStats | None] = band_stats
    for node in _chain(rule):
        name = canonical_function_name(node.function)
        ctx = FunctionContext(
            function=name,
            output_pixel_type=node.output_pixel_type,
            cell_size=cell_size,
            meters_per_unit=meters_per_unit,
        )
        block = FUNCTIONS[name](block, node.arguments, stats, ctx)
        stats = output_stats(
            RenderingRule(node.function, node.arguments, node.output_pixel_type), stats
        )
    return block


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """How a mosaicked block becomes the pixels of an output image (exportImage options)."""

    band_ids: tuple[int, ...] | None = None
    rendering_rule: RenderingRule | None = None
    pixel_type: PixelType | None = None
    nodata: tuple[float, ...] | None = None
    nodata_interpretation: Literal["any", "all"] = "any"
    eight_bit: bool = False  # png*, jpg, jpgpng, bmp, gif
    default_band_ids: tuple[int, ...] = ()  # the service's defaultBandIds
    cell_size: tuple[float, float] = (1.0, 1.0)  # output pixel size in its CRS units
    meters_per_unit: float = 1.0
    pad: int = 0  # extra pixels read on each side for neighbourhood functions


def _pick(stats: Sequence[BandStats | None], ids: Sequence[int]) -> list[BandStats | None]:
    return [stats[i] if 0 <= i < len(stats) else None for i in ids]


def finish_block(
    block: PixelBlock,
    spec: OutputSpec,
    band_stats: Sequence[BandStats | None] = (),
    dataset_nodata: float | None = None,
) -> PixelBlock:
    """bandIds, rendering rule, crop of the padding, display bands (8-bit), pixelType, user
    noData, then the 8-bit min-max stretch (or, for other formats, nodata written into
    invalid pixels)."""
    stats: Sequence[BandStats | None] = band_stats
    composed = block.data
    if spec.band_ids is not None:
        block = select_bands(block, spec.band_ids)
        stats = _pick(stats, spec.band_ids)
    if spec.rendering_rule is not None:
        block = apply_rendering(
            block,
            spec.rendering_rule,
            stats,
            cell_size=spec.cell_size,
            meters_per_unit=spec.meters_per_unit,
        )
        stats = output_stats(spec.rendering_rule, stats)
    else:
        block = PixelBlock(block.data, block.valid, block.band_names, dataset_nodata)
    if spec.pad:
        p = spec.pad
        block = PixelBlock(
            block.data[:, p:-p, p:-p], block.valid[p:-p, p:-p], block.band_names, block.nodata
        )
    if spec.eight_bit and spec.band_ids is None:
        shown = display_bands(block.data.shape[0], spec.default_band_ids)
        if shown is not None:
            block = select_bands(block, shown)
            stats = _pick(stats, shown)
    if spec.pixel_type is not None:
        block = convert_pixel_type(block, spec.pixel_type)
    if spec.nodata:
        block = apply_nodata(block, spec.nodata, spec.nodata_interpretation)
    if spec.eight_bit:
        return stretch_to_u8(block, stats)
    # a fresh array made above (selection, rule, conversion) is filled in place: no copy
    return fill_invalid(block, in_place=not np.may_share_memory(block.data, composed))


@dataclass(frozen=True, slots=True)
class ItemRendering:
    """An ``itemRenderingRule``: run on each item's pixels before they are mosaicked."""

    rule: RenderingRule
    cell_size: tuple[float, float] = (1.0, 1.0)  # read pixel size in its CRS units
    meters_per_unit: float = 1.0

    def apply(self, block: PixelBlock, item_stats: Sequence[BandStats | None]) -> PixelBlock:
        """The item's block after the rule (statistics: the item's own)."""
        return apply_rendering(
            block,
            self.rule,
            item_stats,
            cell_size=self.cell_size,
            meters_per_unit=self.meters_per_unit,
        )
