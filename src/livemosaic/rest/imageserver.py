"""The image service resource and its descriptive child resources (spec 5, 6.5–6.8, 6.11).

Operations that read pixels or the catalog live in :mod:`export_ops`, :mod:`catalog_query`,
:mod:`pixel_ops` and :mod:`items`; the catch-all for unknown operations is
:data:`fallback_router`, included last by :mod:`livemosaic.rest.routes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from livemosaic.core.cancel import CancelToken
from livemosaic.core.export import ExportRequest
from livemosaic.core.models import ServiceSnapshot
from livemosaic.core.mosaic_rules import default_mosaic_rule
from livemosaic.core.ports import DimensionFilter
from livemosaic.errors import InvalidParameter, NotSupported
from livemosaic.rest import service_json as sj
from livemosaic.rest.context import (
    FSVC,
    SVC,
    app_context,
    require_capability,
    root_path,
    run_admitted,
    service_crs,
    service_snapshot,
)
from livemosaic.rest.formats import resource_response
from livemosaic.rest.html import Link, resource_page
from livemosaic.rest.multidim_json import multidimensional_info as md_info_json
from livemosaic.rest.multidim_json import slices_json
from livemosaic.rest.params import Params, parse_choice, read_params
from livemosaic.rest.rules import MD_ACCEPTED, parse_md_definition
from livemosaic.rest.thematic_json import thematic_flags, thematic_for
from livemosaic.rest.viewer import viewer_url

router = APIRouter()
fallback_router = APIRouter()
METHODS = ["GET", "POST"]
HISTOGRAM_SIZE = 1024  # longest side of the overview rendered for histograms
THEMATIC_CHILDREN = (
    ("colormap", "hasColormap"),
    ("rasterAttributeTable", "hasRasterAttributeTable"),
)


def service_url(request: Request, snapshot: ServiceSnapshot) -> str:
    """The path of a service resource with its canonical names."""
    return f"{root_path(request)}/rest/services/{snapshot.qualified_name}/ImageServer"


def sr_json(request: Request, snapshot: ServiceSnapshot) -> dict[str, Any]:
    """The service spatial reference JSON."""
    return snapshot.spatial_reference.to_json()


def _service_page(request: Request, snapshot: ServiceSnapshot, data: dict[str, Any]) -> str:
    base = service_url(request, snapshot)
    children = [Link("keyProperties", f"{base}/keyProperties"), Link("statistics", f"{base}/statistics"),
                Link("rasterFunctionInfos", f"{base}/rasterFunctionInfos")]  # fmt: skip
    if data.get("hasHistograms"):
        children.append(Link("histograms", f"{base}/histograms"))
    children += [Link(name, f"{base}/{name}") for name, key in THEMATIC_CHILDREN if data.get(key)]
    children.append(Link("legend", f"{base}/legend"))
    if data.get("hasMultidimensions"):
        children.append(Link("multidimensionalInfo", f"{base}/multidimensionalInfo"))
    children.append(Link("Live viewer", viewer_url(request, snapshot)))
    ops = [Link(op, f"{base}/{op}") for op in ("exportImage", "query", "identify", "getSamples")]
    return resource_page(
        request,
        f"{snapshot.qualified_name} (ImageServer)",
        data,
        children=children,
        operations=ops,
        show_properties=True,
        image_url=f"{base}/exportImage?f=image&size=400,400" if snapshot.summary.extent else None,
    )


@router.api_route(SVC, methods=METHODS)
@router.api_route(FSVC, methods=METHODS)
async def service_resource(request: Request) -> Response:
    """``{svc}``: the image service description (5.1)."""
    snapshot = service_snapshot(request)
    params = await read_params(request)
    ctx = app_context(request)
    geographic = ctx.projector.is_geographic(service_crs(snapshot))
    data = sj.service_info(
        snapshot, ctx.settings, sr_json(request, snapshot), geographic=geographic
    )
    thematic = await thematic_for(request, snapshot)
    data.update(thematic_flags(snapshot, thematic))
    return resource_response(
        request,
        params,
        data,
        lambda: _service_page(request, snapshot, data),
        snapshot=snapshot,
        metadata=True,
    )


def _simple(
    request: Request, params: Params, snapshot: ServiceSnapshot, title: str, data: dict[str, Any]
) -> Response:
    return resource_response(
        request,
        params,
        data,
        lambda: resource_page(
            request, title, data, children=[Link("Service", service_url(request, snapshot))]
        ),
        snapshot=snapshot,
        metadata=True,
    )


@router.api_route(SVC + "/keyproperties", methods=METHODS)
@router.api_route(FSVC + "/keyproperties", methods=METHODS)
async def key_properties(request: Request) -> Response:
    """``{svc}/keyProperties`` (6.6)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    return _simple(request, params, snapshot, "keyProperties", sj.key_properties(snapshot))


@router.api_route(SVC + "/statistics", methods=METHODS)
@router.api_route(FSVC + "/statistics", methods=METHODS)
async def statistics(request: Request) -> Response:
    """``{svc}/statistics`` (6.7), optionally of one ``variable``."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    return _simple(
        request, params, snapshot, "statistics", sj.statistics(snapshot, params.get("variable"))
    )


@router.api_route(SVC + "/rasterfunctioninfos", methods=METHODS)
@router.api_route(FSVC + "/rasterfunctioninfos", methods=METHODS)
async def raster_function_infos(request: Request) -> Response:
    """``{svc}/rasterFunctionInfos`` (6.8)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    return _simple(
        request, params, snapshot, "rasterFunctionInfos", sj.raster_function_infos(snapshot)
    )


@router.api_route(SVC + "/multidimensionalinfo", methods=METHODS)
@router.api_route(FSVC + "/multidimensionalinfo", methods=METHODS)
async def multidimensional_info(request: Request) -> Response:
    """``{svc}/multidimensionalInfo`` (6.5; both spellings match case-insensitively)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    if not snapshot.summary.variables:
        raise NotSupported(
            "This service has no multidimensional information (hasMultidimensions is false)."
        )
    policy = parse_choice(
        params.get("returnDimensionValues"),
        "returnDimensionValues",
        ("always", "never", "ifIrregular"),
        "ifIrregular",
    ).lower()
    return _simple(
        request,
        params,
        snapshot,
        "multidimensionalInfo",
        md_info_json(snapshot, policy),
    )


@router.api_route(SVC + "/slices", methods=METHODS)
@router.api_route(FSVC + "/slices", methods=METHODS)
async def slices(request: Request) -> Response:
    """``{svc}/slices``: slice ids with their multidimensional definitions (10.8.1+)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    if not snapshot.summary.variables:
        raise NotSupported(
            "This service has no multidimensional information (hasMultidimensions is false)."
        )
    md = params.json("multidimensionalDefinition", MD_ACCEPTED)
    filters = list(parse_md_definition(md, snapshot=snapshot))
    return _simple(request, params, snapshot, "slices", slices_json(snapshot, filters))


@router.api_route(SVC + "/histograms", methods=METHODS)
@router.api_route(FSVC + "/histograms", methods=METHODS)
async def histograms(request: Request) -> Response:
    """``{svc}/histograms`` (6.7): 256-bin histograms computed once per published version."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    variable = params.get("variable")
    if variable and not any(v.name.lower() == variable.lower() for v in snapshot.summary.variables):
        raise InvalidParameter("variable", f"'{variable}' is not a variable of this service.")
    ctx = app_context(request)
    key = (
        "histograms",
        snapshot.qualified_name.lower(),
        snapshot.version,
        (variable or "").lower(),
    )
    data: dict[str, Any] | None = ctx.cache.get(key)
    if data is None:
        export = histogram_request(snapshot, variable)
        weight = ctx.exporter.check_memory(snapshot, export) if export is not None else 0
        data = await run_admitted(request, weight, compute_histograms, request, snapshot, variable)
        ctx.cache[key] = data
    return _simple(request, params, snapshot, "histograms", data)


def histogram_request(snapshot: ServiceSnapshot, variable: str | None) -> ExportRequest | None:
    """The image histograms are computed on: the whole service, at most 1024 pixels on a side
    (None when the service is empty)."""
    summary = snapshot.summary
    ext = summary.extent
    if ext is None or summary.item_count == 0 or ext.width <= 0 or ext.height <= 0:
        return None
    scale = HISTOGRAM_SIZE / max(ext.width, ext.height)
    width = max(1, round(ext.width * scale))
    height = max(1, round(ext.height * scale))
    rule = default_mosaic_rule(snapshot.definition)
    if variable:
        from dataclasses import replace

        rule = replace(rule, dimensions=(DimensionFilter(variable, None),))
    return ExportRequest(extent=ext, crs=service_crs(snapshot), width=width, height=height,
                         format="tiff", mosaic_rule=rule, resampling="nearest")  # fmt: skip


def compute_histograms(
    request: Request,
    snapshot: ServiceSnapshot,
    variable: str | None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Histograms of an overview of the whole service (at most 1024 pixels on a side)."""
    export = histogram_request(snapshot, variable)
    if export is None:
        return {"histograms": []}
    summary = snapshot.summary
    block, _ids = app_context(request).exporter.render(snapshot, export, cancel)
    out: list[dict[str, Any]] = []
    byte_data = summary.pixel_type == "U8"
    for band in range(block.data.shape[0]):
        values = np.asarray(block.data[band][block.valid], dtype="float64")
        values = values[np.isfinite(values)]
        if byte_data:
            lo, hi = -0.5, 255.5
        elif values.size:
            lo, hi = float(values.min()), float(values.max())
        else:
            lo, hi = 0.0, 0.0
        if hi <= lo:
            hi = lo + 1.0
        counts, _edges = np.histogram(values, bins=256, range=(lo, hi))
        out.append({"size": 256, "min": lo, "max": hi, "counts": [int(c) for c in counts]})
    return {"histograms": out}


@router.api_route(SVC + "/tile/{rest:path}", methods=METHODS)
@router.api_route(FSVC + "/tile/{rest:path}", methods=METHODS)
async def tile(request: Request) -> Response:
    """``{svc}/tile/{level}/{row}/{col}``: livemosaic services are dynamic, not cached (6.11)."""
    service_snapshot(request)
    await read_params(request)
    raise InvalidParameter(
        "tile", "this service is dynamic and has no tile cache.", accepted="exportImage requests"
    )


@fallback_router.api_route(SVC + "/{operation:path}", methods=METHODS)
@fallback_router.api_route(FSVC + "/{operation:path}", methods=METHODS)
async def unknown_operation(request: Request) -> Response:
    """Any other child of a service: 400 "Requested operation is not supported by this service."."""
    service_snapshot(request)
    await read_params(request)
    operation = str(request.path_params.get("operation", ""))
    raise NotSupported(f"'{operation[:80]}' is not an operation or resource of an image service.")


__all__ = ["compute_histograms", "fallback_router", "router", "service_url", "sr_json"]
