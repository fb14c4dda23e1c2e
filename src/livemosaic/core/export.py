"""exportImage, identify and getSamples over a mosaic dataset's live catalog.

The REST layer parses a request into an :class:`ExportRequest` (or the identify / samples
arguments), takes the service's current :class:`ServiceSnapshot` once, and calls an
:class:`ImageExporter`. Item lookup goes through the ``CatalogStore`` indexes; pixels come
from the ``RasterSource``; composition follows the mosaic rule; rendering rules run on the
mosaicked block; the ``ImageEncoder`` makes bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from livemosaic.core.models import Extent, PixelType, RasterItem, ServiceSnapshot
from livemosaic.core.mosaic_rules import MosaicRule
from livemosaic.core.ports import (
    CatalogStore,
    EncodedImage,
    ImageEncoder,
    ImageFormat,
    PixelBlock,
    Projector,
    RasterSource,
    Resampling,
)
from livemosaic.core.rendering import RenderingRule


@dataclass(frozen=True, slots=True)
class ExportLimits:
    """Limits enforced on every export (from settings / service properties)."""

    max_width: int = 15000
    max_height: int = 4100
    max_items: int = 20


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """A parsed exportImage request. ``extent`` is in ``crs`` (the output imageSR)."""

    extent: Extent
    crs: str
    width: int
    height: int
    format: ImageFormat = "jpgpng"
    time: tuple[int | None, int | None] | None = None
    mosaic_rule: MosaicRule | None = None
    rendering_rule: RenderingRule | None = None
    band_ids: tuple[int, ...] | None = None
    pixel_type: PixelType | None = None
    nodata: tuple[float, ...] | None = None
    nodata_interpretation: Literal["any", "all"] = "any"
    resampling: Resampling = "bilinear"
    quality: int = 75
    lerc_tolerance: float = 0.0
    lerc_version: int = 2


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Encoded image plus the grid it covers and the items that took part."""

    image: EncodedImage
    extent: Extent
    crs: str
    width: int
    height: int
    item_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PointValue:
    """Values of one item (or of the mosaic) at a point; None = NoData."""

    item: RasterItem | None
    values: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    """Mosaicked value at a point plus each contributing item's value, in mosaic order."""

    location: tuple[float, float]  # in the dataset CRS
    value: tuple[float, ...] | None  # None = NoData
    items: tuple[PointValue, ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One getSamples sample."""

    location: tuple[float, float]  # in the dataset CRS
    location_id: int
    values: tuple[float, ...] | None
    item: RasterItem | None
    resolution: float


class ImageExporter:
    """Reads, mosaics, renders and encodes images from a live catalog."""

    def __init__(
        self,
        catalog: CatalogStore,
        source: RasterSource,
        projector: Projector,
        encoder: ImageEncoder,
        limits: ExportLimits,
    ) -> None:
        self.catalog = catalog
        self.source = source
        self.projector = projector
        self.encoder = encoder
        self.limits = limits

    def render(
        self, snapshot: ServiceSnapshot, request: ExportRequest
    ) -> tuple[PixelBlock, tuple[int, ...]]:
        """The mosaicked, rendered pixel block of a request and the item ids used."""
        raise NotImplementedError

    def export(self, snapshot: ServiceSnapshot, request: ExportRequest) -> ExportResult:
        """Render and encode (LimitExceeded when width/height pass the limits)."""
        raise NotImplementedError

    def identify(
        self,
        snapshot: ServiceSnapshot,
        x: float,
        y: float,
        crs: str,
        *,
        mosaic_rule: MosaicRule | None = None,
        rendering_rule: RenderingRule | None = None,
        time: tuple[int | None, int | None] | None = None,
        pixel_size: float | None = None,
        max_items: int | None = None,
    ) -> IdentifyResult:
        """Pixel values at one point (x, y in ``crs``)."""
        raise NotImplementedError

    def samples(
        self,
        snapshot: ServiceSnapshot,
        points: list[tuple[float, float]],
        crs: str,
        *,
        mosaic_rule: MosaicRule | None = None,
        time: tuple[int | None, int | None] | None = None,
        first_value_only: bool = True,
        resampling: Resampling = "nearest",
    ) -> list[Sample]:
        """Values at many points (already densified by the caller)."""
        raise NotImplementedError
