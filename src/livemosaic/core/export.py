"""exportImage, identify and getSamples over a mosaic dataset's live catalog.

The REST layer parses a request into an :class:`ExportRequest` (or the identify / samples
arguments), takes the service's current :class:`ServiceSnapshot` once, and calls an
:class:`ImageExporter`. Item lookup goes through the ``CatalogStore`` indexes; pixels come
from the ``RasterSource``; composition follows the mosaic rule; rendering rules run on the
mosaicked block; the ``ImageEncoder`` makes bytes.

Order of work for an image: size limits; request extent to the dataset CRS; item query
(extent, time, where, fids / lock ids, dimensions — a multidimensional service draws its
default slice), or the dataset's overview tiles at small scales (core.overviews); soft
resolution filter; mosaic-method ordering; cap at ``max_items`` and
``maxMosaicImageCount``; read and compose (First stops reading once every pixel is filled;
Last is First over the reversed order); ``bandIds``; rendering rule; ``pixelType``; user
``noData``; for 8-bit formats the default display bands and a min-max stretch; encode.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from livemosaic.core.budget import ExportShape, export_bytes, mib, points_bytes, stage_bytes
from livemosaic.core.cancel import CancelToken, check
from livemosaic.core.compose import compose_point, edge_weights, make_compositor
from livemosaic.core.geographic import shifted, wrap_shifts
from livemosaic.core.models import (
    BandStats,
    Extent,
    PixelType,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
)
from livemosaic.core.mosaic_rules import (
    MosaicOperation,
    MosaicRule,
    and_where,
    attribute_queries,
    default_mosaic_rule,
    effective_dimensions,
    filter_by_resolution,
    fits_resolution,
    item_contains_point,
    missing_value_query,
    mosaic_item_cap,
    order_items,
)
from livemosaic.core.overviews import overview_items
from livemosaic.core.pixels import (
    EIGHT_BIT_FORMATS,
    empty_block,
    numpy_dtype,
)
from livemosaic.core.ports import (
    CatalogStore,
    DimensionFilter,
    EncodedImage,
    ImageEncoder,
    ImageFormat,
    ItemQuery,
    PixelBlock,
    Projector,
    RasterSource,
    ReadRequest,
    Resampling,
    TiffCompression,
)
from livemosaic.core.rendering import (
    ItemRendering,
    OutputSpec,
    RenderingRule,
    apply_rendering,
    finish_block,
    needs_neighbourhood,
    output_stats,
)
from livemosaic.core.service_properties import lower_limit, service_properties
from livemosaic.core.where_ast import Compare, Condition, Field, Literal_, Or
from livemosaic.errors import LimitExceeded, RasterUnavailable

log = logging.getLogger(__name__)


def display_stats(snapshot: ServiceSnapshot, items: Sequence[RasterItem]) -> tuple[BandStats, ...]:
    """Statistics to stretch with: the drawn variable's own when all items share one variable
    (multidimensional services pool very different quantities), else the service's."""
    variables = {it.variable for it in items}
    if len(variables) == 1:
        name = next(iter(variables))
        for var in snapshot.summary.variables:
            if var.name == name and var.stats is not None:
                return (var.stats,)
    return snapshot.summary.band_stats


@dataclass(frozen=True, slots=True)
class ExportLimits:
    """Limits enforced on every export (from settings / service properties)."""

    max_width: int = 15000
    max_height: int = 4100
    max_items: int = 20
    max_candidates: int = 1000  # items fetched from the catalog before ordering and capping
    # orders the catalog cannot sort (Center, Nadir, Viewpoint, Northwest, Seamline) fetch
    # every match up to this many, so the top items are exact; beyond, max_candidates only
    max_ordered_candidates: int = 20000
    # estimated memory one request may take (core.budget); 0 = no limit
    max_request_bytes: int = 0


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
    compression: TiffCompression = "None"


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


def _merge(first: PixelBlock, second: PixelBlock) -> PixelBlock:
    """Two reads of one item on the same grid: the first's valid pixels, the second's elsewhere."""
    fill = ~first.valid & second.valid
    data = first.data.copy()
    data[:, fill] = second.data[:, fill]
    return PixelBlock(data, first.valid | second.valid)


def same_crs(a: str, b: str) -> bool:
    """True when two CRS strings are literally the same system ("EPSG:n" keys or equal WKT)."""
    return a.strip().upper() == b.strip().upper()


def size_limits(definition: ServiceDefinition, limits: ExportLimits) -> tuple[int, int]:
    """Largest width and height: the limits, lowered by the service's maxImageWidth/Height."""
    props = service_properties(definition)
    return (
        lower_limit(props.max_image_width, limits.max_width),
        lower_limit(props.max_image_height, limits.max_height),
    )


def _fits_where(pixel_size: float) -> Condition:
    """A catalog condition keeping (a little more than) the items that fit a pixel size."""
    max_ps = Field("MaxPS")
    return Or(
        (
            Compare("<=", max_ps, Literal_(0.0)),
            Compare(">=", max_ps, Literal_(pixel_size * (1 - 1e-6))),
        )
    )


def _values(block: PixelBlock | None) -> tuple[float, ...] | None:
    """The band values of the top-left pixel of a block, None when it is not valid."""
    if block is None or not bool(block.valid[0, 0]):
        return None
    return tuple(float(v) for v in block.data[:, 0, 0])


class ImageExporter:
    """Reads, mosaics, renders and encodes images from a live catalog."""

    def __init__(
        self,
        catalog: CatalogStore,  # items, and the overview settings of its dataset
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
        self._warned_services: set[str] = set()  # services warned about unordered candidates

    # --- item selection -------------------------------------------------------------------

    def check_size(self, snapshot: ServiceSnapshot, width: int, height: int) -> None:
        """LimitExceeded unless 1 <= width/height <= the (service) maximum."""
        max_w, max_h = size_limits(snapshot.definition, self.limits)
        if width < 1 or height < 1:
            raise LimitExceeded(
                f"The requested image size {width}x{height} is too small; "
                "width and height must be at least 1 pixel.",
                next_step="Send size=<width>,<height> with positive numbers, e.g. size=400,400.",
            )
        if width > max_w or height > max_h:
            raise LimitExceeded(
                f"The requested image size {width}x{height} exceeds the limit of "
                f"{max_w}x{max_h} pixels (maxImageWidth x maxImageHeight).",
                next_step="Request a smaller size (split the area into tiles), or raise "
                "LIVEMOSAIC_MAX_IMAGE_WIDTH / LIVEMOSAIC_MAX_IMAGE_HEIGHT or the service's "
                "maxImageWidth / maxImageHeight.",
            )

    def export_shape(self, snapshot: ServiceSnapshot, request: ExportRequest) -> ExportShape:
        """What the memory of an export depends on (known before any read)."""
        summary = snapshot.summary
        bands = max(summary.band_count, 1)
        known = summary.pixel_type not in ("UNKNOWN", "")
        item_dtype = numpy_dtype(summary.pixel_type) if known else np.dtype(np.float64)
        rule = request.mosaic_rule or default_mosaic_rule(snapshot.definition)
        pad = 2 if needs_neighbourhood(request.rendering_rule) else 0
        eight_bit = request.format in EIGHT_BIT_FORMATS
        out_bands = len(request.band_ids) if request.band_ids else bands
        if eight_bit and not request.band_ids:
            out_bands = min(out_bands, 3)
        out_type = request.pixel_type
        return ExportShape(
            rows=request.height + pad,
            cols=request.width + pad,
            bands=bands,
            item_dtype=item_dtype,
            operation=rule.operation,
            out_bands=out_bands,
            out_dtype=numpy_dtype(out_type) if out_type and out_type != "UNKNOWN" else None,
            band_selection=request.band_ids is not None,
            rendering=request.rendering_rule is not None or rule.item_rendering_rule is not None,
            eight_bit=eight_bit,
            format=request.format,
            lerc_version=request.lerc_version,
        )

    def memory_estimate(self, snapshot: ServiceSnapshot, request: ExportRequest) -> int:
        """The estimated peak memory of an export in bytes (core.budget)."""
        return export_bytes(self.export_shape(snapshot, request))

    def check_memory(self, snapshot: ServiceSnapshot, request: ExportRequest) -> int:
        """The estimate of an export; LimitExceeded when it passes ``max_request_bytes``."""
        shape = self.export_shape(snapshot, request)
        need = export_bytes(shape)
        limit = self.limits.max_request_bytes
        if limit <= 0 or need <= limit:
            return need
        per_pixel = max(stage_bytes(shape).values())
        scale = math.sqrt(max(limit - (need - per_pixel * shape.rows * shape.cols), 0)
                          / (per_pixel * shape.rows * shape.cols))  # fmt: skip
        fit_w, fit_h = max(1, int(request.width * scale)), max(1, int(request.height * scale))
        kind = str(request.pixel_type or snapshot.summary.pixel_type)
        first = "" if shape.operation in ("First", "Last") else ", or the First mosaic operation"
        raise LimitExceeded(
            f"The requested image is too large for this server: {request.width}x"
            f"{request.height} pixels of {shape.out_bands} band(s) as {kind} "
            f"({shape.operation} mosaic, format {request.format}) needs about {mib(need)} of "
            f"memory; the limit per request is {mib(limit)}.",
            next_step=f"Request a smaller size (about {fit_w}x{fit_h} pixels fits; split the "
            "area into tiles), fewer bands (bandIds) or a smaller pixelType (e.g. U8, U16 or "
            f"F32 instead of F64){first}; or raise LIVEMOSAIC_REQUEST_MEMORY_MB.",
        )

    def check_points(self, snapshot: ServiceSnapshot, points: int) -> int:
        """The estimated memory of identify or getSamples over ``points`` points;
        LimitExceeded when it passes ``max_request_bytes``."""
        cap = mosaic_item_cap(snapshot.definition, self.limits.max_items)
        need = points_bytes(points, cap, snapshot.summary.band_count)
        limit = self.limits.max_request_bytes
        if limit > 0 and need > limit:
            raise LimitExceeded(
                f"The request asks for {points} sample points over up to {cap} items each, "
                f"which needs about {mib(need)} of memory; the limit per request is {mib(limit)}.",
                next_step="Ask for fewer points (a larger sampleDistance or a smaller "
                "sampleCount), or raise LIVEMOSAIC_REQUEST_MEMORY_MB.",
            )
        return need

    def _query(
        self,
        snapshot: ServiceSnapshot,
        rule: MosaicRule,
        extent: Extent,
        time: tuple[int | None, int | None] | None,
    ) -> list[RasterItem]:
        """Catalog items matching the rule's filters over an extent in the dataset CRS,
        holding the first ``max_candidates`` of them in the rule's order (see _candidates)."""
        return self._candidates(snapshot, rule, extent, time, self.limits.max_candidates)[0]

    def _candidates(
        self,
        snapshot: ServiceSnapshot,
        rule: MosaicRule,
        extent: Extent,
        time: tuple[int | None, int | None] | None,
        top: int,
        extra: Condition | None = None,
    ) -> tuple[list[RasterItem], bool]:
        """Items matching the rule's filters (and ``extra``) over an extent in the dataset CRS,
        chosen so that the first ``top`` of them in the rule's order are among them; and
        whether they are every match.

        LockRaster ids and fids name the candidates. None is OBJECTID order, which the
        catalog sorts; Attribute on a number or date field takes two ordered queries from the
        sort value outwards (:func:`attribute_queries`); both fetch ``top`` items at most.
        Distance orders (and Attribute on text or item attributes) cannot be sorted by the
        catalog: past ``max(top, max_candidates)`` matches every match is fetched while they
        are at most ``max_ordered_candidates``; beyond that the first ``max_candidates`` by
        OBJECTID are used and a warning is logged once per service.
        """
        ids: tuple[int, ...] | None = rule.fids or None
        if rule.method == "LockRaster":
            lock = rule.lock_raster_ids
            ids = tuple(i for i in lock if ids is None or i in ids)
            if not ids:
                return [], True

        def probe(filters: tuple[DimensionFilter, ...]) -> RasterItem | None:
            found = self.catalog.find_items(
                snapshot.dataset.name, ItemQuery(dimensions=filters, limit=1)
            )
            return found[0] if found else None

        dims = effective_dimensions(
            rule, snapshot.summary, snapshot.definition, time_given=time is not None, probe=probe
        )
        where = rule.where if extra is None else and_where(rule.where, extra)
        base = ItemQuery(object_ids=ids, extent=extent, time=time, where=where, dimensions=dims)
        name, k = snapshot.dataset.name, max(top, 1)
        if ids is not None:  # explicit candidates: every one of them
            return self.catalog.find_items(name, base), True
        if rule.method == "None":
            ordered = replace(base, order_by=(("OBJECTID", rule.ascending),), limit=k)
            items = self.catalog.find_items(name, ordered)
            return items, len(items) < k
        queries = attribute_queries(base, rule, k) if rule.method == "Attribute" else None
        if queries is not None:
            return self._by_attribute(name, base, rule, queries, k)
        point = self._reference_point(snapshot, rule, extent)
        if point is not None:
            # the catalog orders by centre distance itself: exact, and only k rows decoded
            nearest = replace(base, nearest_to=point, nearest_ascending=rule.ascending, limit=k)
            items = self.catalog.find_items(name, nearest)
            return items, len(items) < k
        return self._by_distance(snapshot, base, rule, max(k, self.limits.max_candidates))

    def _reference_point(
        self, snapshot: ServiceSnapshot, rule: MosaicRule, extent: Extent
    ) -> tuple[float, float] | None:
        """The point a distance method measures from (dataset CRS), as ``order_items`` does."""
        if rule.method in ("Center", "Nadir"):
            return extent.center
        if rule.method == "Viewpoint":
            return rule.viewpoint or extent.center
        if rule.method in ("Northwest", "Seamline"):
            return self._nw_corner(snapshot)
        return None

    def _by_attribute(
        self, dataset: str, base: ItemQuery, rule: MosaicRule, queries: list[ItemQuery], k: int
    ) -> tuple[list[RasterItem], bool]:
        """The first ``k`` items of an Attribute order from its ordered catalog queries."""
        parts = [self.catalog.find_items(dataset, q) for q in queries]
        found = [it for part in parts for it in part]
        complete = all(len(part) < k for part in parts)
        room = k - len(found)
        missing_query = missing_value_query(base, rule, max(room, 0))
        if missing_query is not None:
            # items without a value come last: they take part only while there is room left
            if complete and room > 0:
                missing = self.catalog.find_items(dataset, missing_query)
                found += missing
                complete = len(missing) < room
            else:
                complete = False
        return order_items(found, rule, (0.0, 0.0))[:k], complete

    def _by_distance(
        self, snapshot: ServiceSnapshot, base: ItemQuery, rule: MosaicRule, k: int
    ) -> tuple[list[RasterItem], bool]:
        """Candidates of an order the catalog cannot sort: every match while that is feasible."""
        name = snapshot.dataset.name
        first = self.catalog.find_items(name, replace(base, limit=k))  # OBJECTID order
        if len(first) < k:
            return first, True
        total = self.catalog.count_items(name, base)
        if total <= len(first):
            return first, True
        if total <= self.limits.max_ordered_candidates and first[-1].id is not None:
            after = Compare(">", Field("OBJECTID"), Literal_(first[-1].id))
            rest = self.catalog.find_items(name, replace(base, where=and_where(base.where, after)))
            return first + rest, True
        self._warn_unordered(snapshot, rule, total)
        return first, False

    def _warn_unordered(self, snapshot: ServiceSnapshot, rule: MosaicRule, total: int) -> None:
        """Log once per service that a request matched too many items to order them all."""
        d = snapshot.definition
        key = f"{d.folder}/{d.name}".lstrip("/").lower()
        if key in self._warned_services:
            return
        self._warned_services.add(key)
        log.warning(
            "service %s: a request matched %d items, more than the %d the %s mosaic method can "
            "put in order (max_ordered_candidates), so the first %d by OBJECTID were ordered; "
            "the image may miss the items the method would put on top. Narrow requests with a "
            "time or where clause, or use the None method or ByAttribute on a number or date "
            "field (ordered by the catalog at any size). This is logged once per service.",
            key,
            total,
            self.limits.max_ordered_candidates,
            rule.method,
            self.limits.max_candidates,
        )

    def _nw_corner(self, snapshot: ServiceSnapshot) -> tuple[float, float] | None:
        ext = snapshot.summary.extent
        return (ext.xmin, ext.ymax) if ext is not None else None

    def select_items(
        self,
        snapshot: ServiceSnapshot,
        rule: MosaicRule,
        extent: Extent,
        crs: str,
        width: int,
        time: tuple[int | None, int | None] | None = None,
    ) -> list[RasterItem]:
        """The items that take part in an image of ``extent`` (in ``crs``), in priority order:
        the dataset's overview tiles when they draw it (core.overviews), else its items."""
        ds_crs = snapshot.dataset.crs
        if not ds_crs:
            return []
        ds_extent = extent
        if not same_crs(crs, ds_crs):
            ds_extent = self.projector.transform_extent(extent, crs, ds_crs)
        if not ds_extent.is_valid():
            return []
        pixel = ds_extent.width / width
        tiles = overview_items(self.catalog, snapshot, rule, ds_extent, pixel, time)
        if tiles is not None:
            return tiles
        cap = mosaic_item_cap(snapshot.definition, self.limits.max_items)
        wrapped = self._wrapped_extent(snapshot, ds_extent)
        if wrapped is not None:  # a -180..180 request over a 0..360 grid, or the reverse
            ds_extent = wrapped
        items, complete = self._candidates(snapshot, rule, ds_extent, time, cap)
        fitting = [it for it in items if fits_resolution(it, pixel)]
        if not complete and len(fitting) < min(cap, len(items)):
            # the resolution filter left too few of the candidates: ask for fitting ones only
            where = _fits_where(pixel)
            fine, _ = self._candidates(snapshot, rule, ds_extent, time, cap, where)
            fitting = [it for it in fine if fits_resolution(it, pixel)]
        items = fitting or items  # like filter_by_resolution: never filter everything away
        ordered = order_items(items, rule, ds_extent.center, self._nw_corner(snapshot))
        return ordered[:cap]

    def _wrapped_extent(self, snapshot: ServiceSnapshot, extent: Extent) -> Extent | None:
        """For a dataset in degrees, ``extent`` widened over the longitudes of the same Earth
        where the dataset's data lies (None when nothing needs wrapping)."""
        data = snapshot.summary.extent
        ds_crs = snapshot.dataset.crs
        if data is None or extent.intersects(data) and data.xmax <= 180 and data.xmin >= -180:
            return None
        if not self.projector.is_geographic(ds_crs):
            return None
        shifts = [s for s in wrap_shifts(data, extent) if s != 0.0]
        if not shifts:
            return None
        parts = [extent, *(shifted(extent, s) for s in shifts)]
        return Extent(
            min(p.xmin for p in parts), extent.ymin, max(p.xmax for p in parts), extent.ymax
        )

    def _reads_of(
        self, snapshot: ServiceSnapshot, item: RasterItem, read: ReadRequest
    ) -> list[ReadRequest]:
        """The reads that draw an item on ``read``: one, or for an item in degrees stored in
        the other longitude convention than the request, one per turn of the Earth that
        brings it onto the request (the item read with its longitudes moved by 360°)."""
        ext = item.extent
        if -180.0 <= ext.xmin and ext.xmax <= 180.0 and -180.0 <= read.extent.xmin:
            if read.extent.xmax <= 180.0 or not self.projector.is_geographic(read.crs):
                return [read]
        ds_crs = snapshot.dataset.crs
        if not self.projector.is_geographic(ds_crs):
            return [read]
        wanted = read.extent
        if not same_crs(read.crs, ds_crs):
            wanted = self.projector.transform_extent(read.extent, read.crs, ds_crs)
        shifts = wrap_shifts(ext, wanted)
        return [replace(read, lon_shift=-s) for s in shifts] or [read]

    # --- images -----------------------------------------------------------------------------

    def _compose(
        self,
        snapshot: ServiceSnapshot,
        items: Sequence[RasterItem],
        operation: MosaicOperation,
        read: ReadRequest,
        cancel: CancelToken | None = None,
        item_rendering: ItemRendering | None = None,
    ) -> tuple[PixelBlock, tuple[int, ...]]:
        """Read items in priority order and combine them with the operation (``cancel`` is
        checked before every read; ``item_rendering`` runs on each item's block first)."""
        ordered = list(items)
        op = operation
        if op == "Last":  # Last = First over the reversed order, so reading can stop early
            ordered.reverse()
            op = "First"
        bands = max((it.band_count for it in ordered), default=0) or snapshot.summary.band_count
        comp = make_compositor(op, bands or 1, read.height, read.width)
        used: list[int] = []
        fed = False
        for item in ordered:
            if comp.done:
                break
            check(cancel)
            reads = self._reads_of(snapshot, item, read)
            block = self._safe_read(item, reads[0])
            for extra in reads[1:]:  # the same grid on another turn of the Earth: fill gaps
                more = self._safe_read(item, extra)
                block = more if block is None else (block if more is None else _merge(block, more))
            if block is None:
                continue
            if item_rendering is not None:
                block = item_rendering.apply(block, item.stats)
                if not fed and block.data.shape[0] != comp.bands:  # the rule sets the bands
                    bands = block.data.shape[0]
                    comp = make_compositor(op, bands, read.height, read.width)
            weight = None
            if op == "Blend":
                item_ext = item.extent
                if not same_crs(read.crs, snapshot.dataset.crs):
                    item_ext = self.projector.transform_extent(
                        item.extent, snapshot.dataset.crs, read.crs
                    )
                weight = edge_weights(item_ext, read.extent, read.height, read.width)
            if comp.feed(block, weight, owned=True):  # a fresh read: no copy needed
                fed = True
                if item.id is not None:
                    used.append(item.id)
        if operation == "Last":
            used.reverse()
        if not fed:
            dtype = numpy_dtype(snapshot.summary.pixel_type)
            return empty_block(bands or 1, read.height, read.width, dtype), ()
        return comp.result(), tuple(used)

    def render(
        self,
        snapshot: ServiceSnapshot,
        request: ExportRequest,
        cancel: CancelToken | None = None,
    ) -> tuple[PixelBlock, tuple[int, ...]]:
        """The mosaicked, rendered pixel block of a request and the item ids used.

        Size and memory limits are checked before anything is read; ``cancel`` between item
        reads and before rendering."""
        self.check_size(snapshot, request.width, request.height)
        self.check_memory(snapshot, request)
        rule = request.mosaic_rule or default_mosaic_rule(snapshot.definition)
        item_rule = rule.item_rendering_rule
        pad = (
            1
            if needs_neighbourhood(request.rendering_rule) or needs_neighbourhood(item_rule)
            else 0
        )
        ext = request.extent
        dx, dy = ext.width / request.width, ext.height / request.height
        mpu = (
            self.projector.meters_per_unit(request.crs)
            if request.rendering_rule or item_rule
            else 1.0
        )
        item_rendering = ItemRendering(item_rule, (dx, dy), mpu) if item_rule else None
        grid = Extent(
            ext.xmin - pad * dx, ext.ymin - pad * dy, ext.xmax + pad * dx, ext.ymax + pad * dy
        )
        read = ReadRequest(
            grid, request.crs, request.width + 2 * pad, request.height + 2 * pad, request.resampling
        )
        items = self.select_items(snapshot, rule, grid, request.crs, read.width, request.time)
        block, used = self._compose(snapshot, items, rule.operation, read, cancel, item_rendering)
        check(cancel)
        spec = OutputSpec(
            band_ids=request.band_ids,
            rendering_rule=request.rendering_rule,
            pixel_type=request.pixel_type,
            nodata=request.nodata,
            nodata_interpretation=request.nodata_interpretation,
            eight_bit=request.format in EIGHT_BIT_FORMATS,
            default_band_ids=service_properties(snapshot.definition).default_band_ids,
            cell_size=(dx, dy),
            meters_per_unit=mpu,
            pad=pad,
        )
        summary = snapshot.summary
        stats = output_stats(item_rule, display_stats(snapshot, items))
        return finish_block(block, spec, stats, summary.nodata), used

    def export(
        self,
        snapshot: ServiceSnapshot,
        request: ExportRequest,
        cancel: CancelToken | None = None,
    ) -> ExportResult:
        """Render and encode (LimitExceeded when the size or the memory estimate pass the
        limits; RequestCancelled when ``cancel`` says stop, checked again before encoding)."""
        block, used = self.render(snapshot, request, cancel)
        check(cancel)
        image = self.encoder.encode(
            block,
            request.format,
            extent=request.extent,
            crs=request.crs,
            quality=request.quality,
            lerc_tolerance=request.lerc_tolerance,
            lerc_version=request.lerc_version,
            compression=request.compression,
        )
        return ExportResult(image, request.extent, request.crs, request.width, request.height, used)

    # --- points -------------------------------------------------------------------------------

    def _to_dataset(
        self, snapshot: ServiceSnapshot, points: Sequence[tuple[float, float]], crs: str
    ) -> list[tuple[float, float]]:
        ds_crs = snapshot.dataset.crs
        if not points or same_crs(crs, ds_crs):
            return list(points)
        xs, ys = self.projector.transform_points(
            [p[0] for p in points], [p[1] for p in points], crs, ds_crs
        )
        return list(zip(xs, ys, strict=True))

    def _items_at(
        self,
        snapshot: ServiceSnapshot,
        rule: MosaicRule,
        points: Sequence[tuple[float, float]],
        time: tuple[int | None, int | None] | None,
        pixel_size: float | None,
    ) -> list[list[RasterItem]]:
        """Per point, the items whose footprint holds it, in priority order."""
        points = [self._on_data(snapshot, x, y) for x, y in points]
        finite = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
        if not finite or not snapshot.dataset.crs:
            return [[] for _ in points]
        box = Extent(
            min(p[0] for p in finite),
            min(p[1] for p in finite),
            max(p[0] for p in finite),
            max(p[1] for p in finite),
        )
        shared, complete = self._candidates(snapshot, rule, box, time, self.limits.max_candidates)
        per_point = not complete and len(finite) > 1
        nw = self._nw_corner(snapshot)
        out: list[list[RasterItem]] = []
        for x, y in points:
            if not (math.isfinite(x) and math.isfinite(y)):
                out.append([])
                continue
            pool = self._query(snapshot, rule, Extent(x, y, x, y), time) if per_point else shared
            hits = [it for it in pool if item_contains_point(it, x, y)]
            if pixel_size:
                hits = filter_by_resolution(hits, pixel_size)
            out.append(order_items(hits, rule, (x, y), nw))
        return out

    def _on_data(self, snapshot: ServiceSnapshot, x: float, y: float) -> tuple[float, float]:
        """A point in the dataset CRS moved by 360° of longitude onto the dataset's data when
        the dataset is in degrees and stored in the other convention (0..360 or -180..180)."""
        data = snapshot.summary.extent
        if data is None or not math.isfinite(x) or data.xmin <= x <= data.xmax:
            return x, y
        if not self.projector.is_geographic(snapshot.dataset.crs):
            return x, y
        for turn in (360.0, -360.0):
            if data.xmin <= x + turn <= data.xmax:
                return x + turn, y
        return x, y

    def _read_point(
        self,
        snapshot: ServiceSnapshot,
        item: RasterItem,
        x: float,
        y: float,
        pixel_size: float | None,
        resampling: Resampling,
    ) -> PixelBlock | None:
        """A 1x1 block around (x, y) in the dataset CRS at the item's resolution."""
        x, y = self._on_data(snapshot, x, y)
        ps = pixel_size or item.low_ps or snapshot.summary.min_cell_size_x or 1.0
        half = ps / 2.0
        read = ReadRequest(
            Extent(x - half, y - half, x + half, y + half), snapshot.dataset.crs, 1, 1, resampling
        )
        return self._safe_read(item, read)

    def _safe_read(self, item: RasterItem, read: ReadRequest) -> PixelBlock | None:
        """Read an item; a file that cannot be read any more is skipped (and logged), so one
        damaged or deleted file never takes the whole service down."""
        try:
            return self.source.read(item, read)
        except RasterUnavailable as exc:
            log.warning("skipping item %s (%s): %s", item.id, exc.path, exc.cause)
            return None

    def _point_mosaic(
        self,
        snapshot: ServiceSnapshot,
        rule: MosaicRule,
        point: tuple[float, float],
        reads: Sequence[tuple[RasterItem, PixelBlock | None]],
        rendering_rule: RenderingRule | None,
    ) -> tuple[tuple[float, ...] | None, RasterItem | None]:
        """The mosaicked (and rendered) value at a point and the item that supplied it."""
        cap = mosaic_item_cap(snapshot.definition, self.limits.max_items)
        parts = [(it, b) for it, b in reads[:cap] if b is not None and _values(b) is not None]
        result, index = compose_point([(it.extent, b) for it, b in parts], rule.operation, point)
        if result is None:
            return None, None
        if rendering_rule is not None:
            ps = parts[index][0].low_ps or 1.0
            result = apply_rendering(
                result,
                rendering_rule,
                snapshot.summary.band_stats,
                cell_size=(ps, ps),
                meters_per_unit=self.projector.meters_per_unit(snapshot.dataset.crs),
            )
        return _values(result), parts[index][0]

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
        cancel: CancelToken | None = None,
    ) -> IdentifyResult:
        """Pixel values at one point (x, y in ``crs``).

        ``pixel_size`` is in dataset units; it filters items by resolution (softly) and sets
        the read window (default: each item's own resolution). ``items`` lists every item
        under the point in mosaic order (at most ``max_items``) with its raw values.
        """
        if not snapshot.dataset.crs:
            return IdentifyResult((x, y), None, ())
        rule = mosaic_rule or default_mosaic_rule(snapshot.definition)
        ((px, py),) = self._to_dataset(snapshot, [(x, y)], crs)
        items = self._items_at(snapshot, rule, [(px, py)], time, pixel_size)[0]
        if max_items is not None:
            items = items[: max(max_items, 0)]
        reads: list[tuple[RasterItem, PixelBlock | None]] = []
        for it in items:
            check(cancel)
            reads.append((it, self._read_point(snapshot, it, px, py, pixel_size, "nearest")))
        value, _ = self._point_mosaic(snapshot, rule, (px, py), reads, rendering_rule)
        per_item = tuple(PointValue(it, _values(b)) for it, b in reads)
        return IdentifyResult((px, py), value, per_item)

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
        rendering_rule: RenderingRule | None = None,
        pixel_size: float | None = None,
        cancel: CancelToken | None = None,
    ) -> list[Sample]:
        """Values at many points (already densified by the caller).

        With ``first_value_only`` one sample per point: the mosaicked value and the item that
        supplied it; otherwise one sample per item with data at the point, in mosaic order.
        A point without data still yields one sample with ``values=None``.
        """
        if not snapshot.dataset.crs:
            return [Sample(p, i, None, None, 0.0) for i, p in enumerate(points)]
        rule = mosaic_rule or default_mosaic_rule(snapshot.definition)
        located = self._to_dataset(snapshot, points, crs)
        per_point = self._items_at(snapshot, rule, located, time, pixel_size)
        cap = mosaic_item_cap(snapshot.definition, self.limits.max_items)
        out: list[Sample] = []
        for index, ((x, y), items) in enumerate(zip(located, per_point, strict=True)):
            items = items[:cap]
            reads: list[tuple[RasterItem, PixelBlock | None]] = []
            for item in items:
                check(cancel)
                block = self._read_point(snapshot, item, x, y, pixel_size, resampling)
                reads.append((item, block))
                if first_value_only and rule.operation == "First" and _values(block) is not None:
                    break  # the first valid item decides the value
            if first_value_only:
                value, source = self._point_mosaic(snapshot, rule, (x, y), reads, rendering_rule)
                res = (pixel_size or source.low_ps) if source is not None else 0.0
                out.append(Sample((x, y), index, value, source, res))
                continue
            found = False
            for item, block in reads:
                if _values(block) is None:
                    continue
                assert block is not None  # _values(None) is None
                if rendering_rule is not None:
                    block = apply_rendering(block, rendering_rule, snapshot.summary.band_stats)
                vals = _values(block)
                out.append(Sample((x, y), index, vals, item, pixel_size or item.low_ps))
                found = True
            if not found:
                out.append(Sample((x, y), index, None, None, 0.0))
        return out
