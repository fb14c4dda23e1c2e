"""``identify`` (spec 6.2) and ``getSamples`` (6.4): pixel values at points.

Geometries arrive in their own SR (the service SR when they carry none); the exporter reads
values on the read thread pool and reports locations in the dataset CRS, which is the
service SR of the responses.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemosaic.core.cancel import CancelToken
from livemosaic.core.export import IdentifyResult, PointValue, Sample
from livemosaic.core.fields import CATALOG_FIELDS, item_attributes
from livemosaic.core.models import Geometry, RasterItem, ServiceSnapshot
from livemosaic.errors import InvalidParameter, LimitExceeded
from livemosaic.rest.catalog_query import feature, field_json, parse_out_fields
from livemosaic.rest.context import (
    FSVC,
    SVC,
    app_context,
    require_capability,
    resolve_crs,
    run_admitted,
    service_crs,
    service_snapshot,
)
from livemosaic.rest.export_ops import mosaic_rule_of
from livemosaic.rest.formats import json_response
from livemosaic.rest.geometry import area_samples, densify_path, parse_geometry, parse_geometry_type
from livemosaic.rest.html import has_operation_input, operation_page
from livemosaic.rest.image_params import parse_interpolation, parse_pixel_size
from livemosaic.rest.params import Params, parse_time, read_params
from livemosaic.rest.rules import parse_rendering_rule, parse_rendering_rules
from livemosaic.rest.service_json import service_limits

router = APIRouter()
METHODS = ["GET", "POST"]
ALL_FIELDS = tuple(f.name for f in CATALOG_FIELDS)


def format_number(value: float) -> str:
    """A pixel value as ArcGIS prints it: integers without decimals, NaN for no data."""
    if not math.isfinite(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _values_text(values: tuple[float, ...] | None, sep: str, nodata: str) -> str:
    if values is None:
        return nodata
    return sep.join(format_number(v) for v in values)


def _point_of(geom: Geometry) -> tuple[float, float]:
    if geom.kind == "point":
        return geom.parts[0][0]
    if geom.kind == "multipoint":
        return geom.parts[0][0]
    return geom.bbox.center


def _visibilities(result: IdentifyResult, operation: str) -> list[float]:
    valid = [pv.values is not None for pv in result.items]
    n = sum(valid)
    if n == 0:
        return [0.0] * len(valid)
    if operation in ("First", "Last"):
        order = range(len(valid)) if operation == "First" else reversed(range(len(valid)))
        winner = next(i for i in order if valid[i])
        return [1.0 if i == winner else 0.0 for i in range(len(valid))]
    return [1.0 / n if v else 0.0 for v in valid]


async def _identify(request: Request, params: Params, snapshot: ServiceSnapshot) -> dict[str, Any]:
    ctx = app_context(request)
    crs = service_crs(snapshot)
    geom = parse_geometry(params.get("geometry"), parse_geometry_type(params.get("geometryType")))
    if geom is None:
        raise InvalidParameter(
            "geometry", "it is required.", accepted='x,y or a point JSON {"x":..,"y":..}'
        )
    geom_crs = resolve_crs(request, geom.sr, "geometry", crs)
    x, y = _point_of(geom)
    rule = mosaic_rule_of(request, params, snapshot)
    rendering = parse_rendering_rule(params.get("renderingRule"))
    extra_rules = parse_rendering_rules(params.get("renderingRules"))
    time = parse_time(params.get("time"))
    pixel = parse_pixel_size(params.get("pixelSize"))
    limits = service_limits(snapshot, ctx.settings)
    max_items = min(
        params.integer("maxItemCount", limits.max_record_count, minimum=1), limits.max_record_count
    )
    return_geometry = params.flag("returnGeometry", True)
    return_items = params.flag("returnCatalogItems", True)
    return_values = params.flag("returnPixelValues", True)

    def identify_all(cancel: CancelToken) -> list[IdentifyResult]:
        return [
            ctx.exporter.identify(
                snapshot,
                x,
                y,
                geom_crs,
                mosaic_rule=rule,
                rendering_rule=rendering_rule,
                time=time,
                pixel_size=pixel[0] if pixel else None,
                max_items=max_items,
                cancel=cancel,
            )  # fmt: skip
            for rendering_rule in (rendering, *extra_rules)
        ]

    weight = ctx.exporter.check_points(snapshot, 1 + len(extra_rules))
    result, *processed = await run_admitted(request, weight, identify_all)
    sr = snapshot.spatial_reference.to_json()
    lx, ly = result.location
    out: dict[str, Any] = {
        "objectId": 0,
        "name": "Pixel",
        "value": _values_text(result.value, ", ", "NoData"),
        "location": {"x": lx, "y": ly, "spatialReference": sr},
        "properties": None,
        "catalogItems": None,
        "catalogItemVisibilities": [],
    }
    contributing = [pv for pv in result.items if pv.item is not None]
    if return_values:
        out["properties"] = {"Values": [_item_values(pv) for pv in contributing]}
    if return_items:
        features = [
            feature(request, pv.item, ALL_FIELDS, return_geometry, crs, crs)
            for pv in contributing
            if pv.item
        ]
        fs: dict[str, Any] = {"objectIdFieldName": "OBJECTID", "geometryType": "esriGeometryPolygon",
                              "spatialReference": sr, "fields": field_json(ALL_FIELDS), "features": features}  # fmt: skip
        out["catalogItems"] = fs
        out["catalogItemVisibilities"] = _visibilities(
            IdentifyResult(result.location, result.value, tuple(contributing)), rule.operation
        )
    if extra_rules:
        out["processedValues"] = [_values_text(p.value, ", ", "NoData") for p in processed]
    return out


def _item_values(pv: PointValue) -> str:
    if pv.values is None:
        count = pv.item.band_count if pv.item is not None else 1
        return " ".join(["NoData"] * max(count, 1))
    return _values_text(pv.values, " ", "NoData")


@router.api_route(SVC + "/identify", methods=METHODS)
@router.api_route(FSVC + "/identify", methods=METHODS)
async def identify(request: Request) -> Response:
    """``{svc}/identify`` (6.2)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    return await _operation(request, params, snapshot, "identify")


async def _operation(
    request: Request, params: Params, snapshot: ServiceSnapshot, name: str
) -> Response:
    run = _identify if name == "identify" else _samples
    f = params.f or "html"
    if f == "html":
        result = await run(request, params, snapshot) if has_operation_input(params) else None
        return HTMLResponse(operation_page(request, name, params, result=result))
    if f not in ("json", "pjson"):
        raise InvalidParameter(
            "f", f"'{f}' is not a format of {name}.", accepted="json, pjson or html"
        )
    return json_response(request, params, await run(request, params, snapshot), snapshot=snapshot)


def sample_points(geom: Geometry, params: Params, cap: int) -> list[tuple[float, float]]:
    """The sample locations of a getSamples geometry (densified lines, grids over areas)."""
    distance = params.number("sampleDistance", None)
    if distance is not None and distance <= 0:
        raise InvalidParameter(
            "sampleDistance", "it must be positive.", accepted="a distance in geometry units"
        )
    count_text = params.get("sampleCount")
    count = params.integer("sampleCount", 0, minimum=1) if count_text is not None else None
    if count is not None:
        count = min(count, cap)
    if geom.kind in ("point", "multipoint"):
        points = [p for part in geom.parts for p in part]
    elif geom.kind == "polyline":
        points = []
        for path in geom.parts:
            if distance is not None:
                # guard before densifying: the number of stations is known from the length
                length = sum(
                    math.hypot(b[0] - a[0], b[1] - a[1])
                    for a, b in zip(path, path[1:], strict=False)
                )
                if length / distance + 1 > cap:
                    raise LimitExceeded(
                        f"sampleDistance {distance:g} gives more than {cap} samples (maxSampleCount).",
                        next_step="Use a larger sampleDistance or a sampleCount.",
                    )
                points += densify_path(path, distance=distance)
            else:
                points += densify_path(path, count=count)
    else:
        points = area_samples(geom, count or min(100, cap))
    if len(points) > cap:
        raise LimitExceeded(
            f"The request asks for {len(points)} samples; the limit is {cap} (maxSampleCount).",
            next_step="Use fewer points or a smaller sampleCount.",
        )
    return points


async def _samples(request: Request, params: Params, snapshot: ServiceSnapshot) -> dict[str, Any]:
    ctx = app_context(request)
    crs = service_crs(snapshot)
    geom = parse_geometry(params.get("geometry"), parse_geometry_type(params.get("geometryType")))
    if geom is None:
        raise InvalidParameter(
            "geometry",
            "it is required.",
            accepted="a point, multipoint, polyline, polygon or envelope",
        )
    geom_crs = resolve_crs(request, geom.sr, "geometry", crs)
    cap = service_limits(snapshot, ctx.settings).max_sample_count
    points = sample_points(geom, params, cap)
    rule = mosaic_rule_of(request, params, snapshot)
    parse_rendering_rule(params.get("renderingRule"))  # validated; values are raw samples
    out_fields = parse_out_fields(params.get("outFields")) if params.get("outFields") else ()
    weight = ctx.exporter.check_points(snapshot, len(points))
    samples: list[Sample] = await run_admitted(
        request, weight, ctx.exporter.samples, snapshot, points, geom_crs,
        mosaic_rule=rule, time=parse_time(params.get("time")),
        first_value_only=params.flag("returnFirstValueOnly", True),
        resampling=parse_interpolation(params.get("interpolation"), "interpolation", "nearest"),
    )  # fmt: skip
    sr = snapshot.spatial_reference.to_json()
    return {"samples": [_sample_json(s, sr, out_fields) for s in samples]}


def _sample_json(sample: Sample, sr: dict[str, Any], out_fields: tuple[str, ...]) -> dict[str, Any]:
    x, y = sample.location
    item: RasterItem | None = sample.item
    out: dict[str, Any] = {
        "location": {"x": x, "y": y, "spatialReference": sr},
        "locationId": sample.location_id,
        "value": _values_text(sample.values, " ", "NaN"),
        "rasterId": item.id if item is not None and item.id is not None else 0,
        "resolution": sample.resolution,
    }
    if out_fields and item is not None:
        attrs = item_attributes(item)
        out["attributes"] = {name: attrs.get(name) for name in out_fields}
    return out


@router.api_route(SVC + "/getsamples", methods=METHODS)
@router.api_route(FSVC + "/getsamples", methods=METHODS)
async def get_samples(request: Request) -> Response:
    """``{svc}/getSamples`` (6.4)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    return await _operation(request, params, snapshot, "getSamples")


__all__ = ["format_number", "router", "sample_points"]
