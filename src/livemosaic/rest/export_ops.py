"""``exportImage`` (spec 6.1) and the shared request building used by catalog item images.

The request is parsed into an :class:`ExportRequest` in the output spatial reference; its
memory is estimated (error 400 over ``request_memory_mb``), it is admitted by the memory gate
(503 busy) and the exporter runs on the read thread pool under its deadline. ``f=image`` streams the bytes; ``f=json`` writes them
under the output folder and answers with an ``href`` that has no query string.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemosaic.core.export import ExportRequest, ExportResult
from livemosaic.core.models import Extent, ServiceSnapshot, SpatialRef
from livemosaic.core.mosaic_rules import MosaicRule
from livemosaic.core.ports import TIFF_COMPRESSIONS, TiffCompression
from livemosaic.core.service_properties import service_properties
from livemosaic.core.thematic import Thematic
from livemosaic.errors import InvalidParameter, LimitExceeded
from livemosaic.rest.context import (
    FSVC,
    SVC,
    app_context,
    public_base,
    require_capability,
    resolve_crs,
    root_path,
    run_admitted,
    run_blocking,
    service_crs,
    service_snapshot,
)
from livemosaic.rest.envelopes import parse_bbox
from livemosaic.rest.formats import image_response, json_response
from livemosaic.rest.html import has_operation_input, operation_page, self_url
from livemosaic.rest.image_params import (
    parse_band_ids,
    parse_format,
    parse_interpolation,
    parse_nodata,
    parse_nodata_interpretation,
    parse_pixel_type,
    resampling_of_service,
)
from livemosaic.rest.multidim_json import slice_filters
from livemosaic.rest.params import (
    Params,
    parse_choice,
    parse_size,
    parse_sr,
    parse_time,
    read_params,
)
from livemosaic.rest.rules import ToDataset, parse_mosaic_rule, parse_rendering_rule
from livemosaic.rest.service_json import service_limits
from livemosaic.rest.thematic_json import thematic_export, thematic_for

router = APIRouter()
METHODS = ["GET", "POST"]
METRES_PER_PIXEL_AT_96DPI = 0.0002645833


@dataclass(frozen=True, slots=True)
class ParsedExport:
    """An export request plus what the JSON answer needs."""

    request: ExportRequest
    image_sr: SpatialRef


def to_dataset_point(request: Request, snapshot: ServiceSnapshot) -> ToDataset:
    """A converter of client points (with an optional SR) into the dataset CRS."""
    ctx = app_context(request)
    dst = service_crs(snapshot)

    def convert(x: float, y: float, sr: SpatialRef | None) -> tuple[float, float]:
        src = resolve_crs(request, sr, "mosaicRule", dst)
        if src == dst:
            return x, y
        xs, ys = ctx.projector.transform_points([x], [y], src, dst)
        return xs[0], ys[0]

    return convert


def mosaic_rule_of(request: Request, params: Params, snapshot: ServiceSnapshot) -> MosaicRule:
    """The request's mosaicRule (service default when absent)."""
    ctx = app_context(request)
    rule = parse_mosaic_rule(
        params.get("mosaicRule"),
        snapshot,
        max_where_length=ctx.settings.max_where_length,
        to_dataset=to_dataset_point(request, snapshot),
    )
    slice_id = params.get("sliceId")
    if slice_id is not None and slice_id.strip() and not rule.dimensions:
        try:
            number = int(slice_id)
        except ValueError:
            raise InvalidParameter(
                "sliceId",
                f"'{slice_id}' is not an integer.",
                accepted="a slice id from {svc}/slices",
            ) from None
        rule = replace(rule, dimensions=slice_filters(snapshot, number))
    return rule


def adjust_aspect(extent: Extent, width: int, height: int) -> Extent:
    """Grow the extent around its centre so that pixels are square for width x height."""
    resx = extent.width / width
    resy = extent.height / height
    cx, cy = extent.center
    if resx > resy:
        half = resx * height / 2.0
        return Extent(extent.xmin, cy - half, extent.xmax, cy + half)
    if resy > resx:
        half = resy * width / 2.0
        return Extent(cx - half, extent.ymin, cx + half, extent.ymax)
    return extent


def parse_export(
    request: Request,
    params: Params,
    snapshot: ServiceSnapshot,
    *,
    default_extent: Extent | None = None,
    mosaic_rule: MosaicRule | None = None,
    default_size: tuple[int, int] = (400, 400),
    thematic: Thematic | None = None,
) -> ParsedExport:
    """Build the ExportRequest of exportImage-style parameters (6.1.1); ``thematic``: the
    service's (:func:`~livemosaic.rest.thematic_json.thematic_for`).

    CPU only, no I/O: it runs on the event loop, as a hop to a worker thread would cost
    several times its few dozen microseconds."""
    ctx = app_context(request)
    projector = ctx.projector
    svc_crs = service_crs(snapshot)
    limits = service_limits(snapshot, ctx.settings)
    bbox = parse_bbox(params.get("bbox"))
    bbox_sr = parse_sr(params.get("bboxSR"), "bboxSR")
    image_sr_given = parse_sr(params.get("imageSR"), "imageSR")
    if bbox is not None:
        extent, env_sr = bbox
        if env_sr is not None:
            bbox_sr = env_sr
    else:
        fallback = default_extent or snapshot.summary.extent
        if fallback is None:
            raise InvalidParameter("bbox", "the service has no extent yet, so a bbox is required.",
                                   accepted="xmin,ymin,xmax,ymax")  # fmt: skip
        extent, bbox_sr = fallback, None
    bbox_crs = resolve_crs(request, bbox_sr, "bboxSR", svc_crs)
    image_sr = image_sr_given or bbox_sr or snapshot.spatial_reference
    image_crs = resolve_crs(request, image_sr_given, "imageSR", bbox_crs)
    if image_crs != bbox_crs:
        extent = projector.transform_extent(extent, bbox_crs, image_crs)
        if not (extent.is_valid() and extent.width > 0 and extent.height > 0):
            raise InvalidParameter(
                "bbox",
                "it cannot be expressed in imageSR.",
                accepted="an extent inside the area imageSR covers",
            )
    size = parse_size(params.get("size")) or default_size
    width, height = size
    if width > limits.max_image_width or height > limits.max_image_height:
        raise LimitExceeded(
            f"The requested image is {width} x {height} pixels; the limit is "
            f"{limits.max_image_width} x {limits.max_image_height} (maxImageWidth x maxImageHeight).",
            next_step="Request a smaller size.",
        )
    if params.flag("adjustAspectRatio", True):
        extent = adjust_aspect(extent, width, height)
    props = service_properties(snapshot.definition)
    default_quality = props.default_compression_quality
    quality = params.integer("compressionQuality", default_quality, minimum=0, maximum=100)
    lerc_version = params.integer("lercVersion", 2, minimum=1, maximum=2)
    tolerance = params.number("compressionTolerance", 0.0) or 0.0
    if tolerance < 0:
        raise InvalidParameter(
            "compressionTolerance", "it must not be negative.", accepted="a number >= 0"
        )
    compression = parse_tiff_compression(params.get("compression"))
    rule = mosaic_rule if mosaic_rule is not None else mosaic_rule_of(request, params, snapshot)
    default_resampling = resampling_of_service(props.default_resampling_method)
    export = ExportRequest(
        extent=extent,
        crs=image_crs,
        width=width,
        height=height,
        format=parse_format(params.get("format")),
        time=parse_time(params.get("time")),
        mosaic_rule=rule,
        rendering_rule=parse_rendering_rule(params.get("renderingRule")),
        band_ids=parse_band_ids(params.get("bandIds"), snapshot.summary.band_count),
        pixel_type=parse_pixel_type(params.get("pixelType")),
        nodata=parse_nodata(params.get("noData")),
        nodata_interpretation=parse_nodata_interpretation(params.get("noDataInterpretation")),
        resampling=parse_interpolation(
            params.get("interpolation"), "interpolation", default_resampling
        ),
        quality=quality,
        lerc_tolerance=tolerance,
        lerc_version=lerc_version,
        compression=compression,
    )
    export = thematic_export(thematic, snapshot, params, export)  # palette, nearest
    return ParsedExport(export, image_sr)


# spellings ArcGIS clients send besides the four of the REST API
_COMPRESSION_ALIASES: dict[str, TiffCompression] = {"deflate": "LZ77", "lzw": "LZ77"}


def parse_tiff_compression(text: str | None) -> TiffCompression:
    """exportImage's ``compression`` (TIFF only): None (the default), JPEG, LZ77 or LERC;
    Deflate and LZW are taken as LZ77."""
    if text is not None and text.strip().lower() in _COMPRESSION_ALIASES:
        return _COMPRESSION_ALIASES[text.strip().lower()]
    choice = parse_choice(text, "compression", TIFF_COMPRESSIONS, "None")
    return next(c for c in TIFF_COMPRESSIONS if c == choice)


def image_format_param(params: Params, default: str = "html") -> str:
    """The ``f`` of an image operation: image, json, pjson or html (kmz → 400)."""
    f = params.f or default
    if f == "kmz":
        raise InvalidParameter(
            "f", "Format not supported: kmz.", accepted="image, json, pjson or html"
        )
    if f not in ("image", "json", "pjson", "html"):
        raise InvalidParameter(
            "f", f"'{f}' is not a format of this operation.", accepted="image, json, pjson or html"
        )
    return f


def output_folder(snapshot: ServiceSnapshot) -> str:
    """The folder of a service's outputs under arcgisoutput (``Folder/Name_ImageServer``)."""
    return f"{snapshot.qualified_name}_ImageServer"


def write_output(output_dir: Path, folder: str, content: bytes, extension: str) -> str:
    """Write an output file with a random name; returns its path relative to ``output_dir``."""
    relative = f"{folder}/_ags_{uuid.uuid4().hex}.{extension.lstrip('.')}"
    target = output_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(content)
    tmp.replace(target)
    return relative


def map_scale(result: ExportResult, meters_per_unit: float) -> float:
    """Map scale at 96 dpi: ground metres per pixel / 0.0002645833 (6.1.3)."""
    if result.width <= 0:
        return 0.0
    ground = result.extent.width / result.width * meters_per_unit
    value = ground / METRES_PER_PIXEL_AT_96DPI
    return value if math.isfinite(value) else 0.0


async def answer_export(
    request: Request, params: Params, snapshot: ServiceSnapshot, parsed: ParsedExport, f: str
) -> Response:
    """Run an export and answer with the image (f=image) or the JSON with its href (f=json)."""
    ctx = app_context(request)
    weight = ctx.exporter.check_memory(snapshot, parsed.request)  # 400 before any wait or read
    result = await run_admitted(
        request, weight, ctx.exporter.export, snapshot, parsed.request,
        keep=lambda done: len(done.image.content),  # counted until the answer is sent
    )  # fmt: skip
    if f == "image":
        return image_response(result.image.content, result.image.content_type, snapshot)
    relative = await run_blocking(
        request, write_output, ctx.settings.output_dir, output_folder(snapshot),
        result.image.content, result.image.extension,
    )  # fmt: skip
    meters = await run_blocking(request, ctx.projector.meters_per_unit, result.crs)
    data: dict[str, Any] = {
        "href": f"{public_base(request)}{root_path(request)}/rest/directories/arcgisoutput/{relative}",
        "width": result.width,
        "height": result.height,
        "extent": {
            "xmin": result.extent.xmin,
            "ymin": result.extent.ymin,
            "xmax": result.extent.xmax,
            "ymax": result.extent.ymax,
            "spatialReference": parsed.image_sr.to_json(),
        },
        "scale": map_scale(result, meters),
    }
    return json_response(request, params, data, snapshot=snapshot)


def export_html(request: Request, params: Params, operation: str = "exportImage") -> Response:
    """The exportImage form; with parameters, the image is shown (fetched with f=image)."""
    image_url = None
    if has_operation_input(params):
        image_url = self_url(request, f="image")
    return HTMLResponse(operation_page(request, operation, params, image_url=image_url))


@router.api_route(SVC + "/exportimage", methods=METHODS)
@router.api_route(FSVC + "/exportimage", methods=METHODS)
async def export_image(request: Request) -> Response:
    """``{svc}/exportImage`` (6.1)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    f = image_format_param(params)
    if f == "html":
        return export_html(request, params)
    parsed = parse_export(request, params, snapshot, thematic=await thematic_for(request, snapshot))
    return await answer_export(request, params, snapshot, parsed, f)


__all__ = [
    "ParsedExport",
    "adjust_aspect",
    "answer_export",
    "export_html",
    "image_format_param",
    "map_scale",
    "mosaic_rule_of",
    "output_folder",
    "parse_export",
    "parse_tiff_compression",
    "router",
    "to_dataset_point",
    "write_output",
]
