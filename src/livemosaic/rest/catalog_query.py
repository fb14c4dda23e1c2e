"""``query`` on the raster catalog (spec 6.3): parse, call, format.

The request becomes a :class:`~livemosaic.core.catalog_search.CatalogSelection` (filters,
order and an optional geometry); :class:`~livemosaic.core.catalog_search.CatalogSearch`
answers counts, pages, ids, extents, distinct values and statistics through the catalog
store's indexes and SQL aggregates. This module turns the answers into FeatureSets with
footprints in the service SR or ``outSR``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemosaic.core.catalog_search import CatalogSearch, CatalogSelection
from livemosaic.core.fields import CATALOG_FIELDS, OBJECTID, item_attributes, resolve_field
from livemosaic.core.geographic import clamp_geographic, clamp_geographic_ring
from livemosaic.core.models import Extent, Geometry, RasterItem, ServiceSnapshot, SpatialRef
from livemosaic.core.ports import STATISTIC_TYPES, DimensionFilter, FieldStatistic, ItemQuery
from livemosaic.core.where import parse_where
from livemosaic.errors import InvalidParameter
from livemosaic.rest.context import (
    FSVC,
    SVC,
    app_context,
    require_capability,
    resolve_crs,
    run_blocking,
    service_crs,
    service_snapshot,
)
from livemosaic.rest.formats import json_response
from livemosaic.rest.geometry import (
    clockwise,
    parse_geometry,
    parse_geometry_type,
    transform_geometry,
)
from livemosaic.rest.html import has_operation_input, operation_page
from livemosaic.rest.image_params import parse_pixel_size
from livemosaic.rest.params import Params, parse_int_list, parse_sr, parse_time, read_params
from livemosaic.rest.rules import parse_md_definition
from livemosaic.rest.service_json import service_limits

router = APIRouter()
METHODS = ["GET", "POST"]
SPATIAL_RELS = (
    "esriSpatialRelIntersects",
    "esriSpatialRelContains",
    "esriSpatialRelWithin",
    "esriSpatialRelEnvelopeIntersects",
    "esriSpatialRelIndexIntersects",
)
FIELD_NAMES = [f.name for f in CATALOG_FIELDS]


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    """A parsed query request."""

    items: ItemQuery
    geometry: Geometry | None  # in the dataset CRS
    out_fields: tuple[str, ...]
    return_geometry: bool
    out_crs: str
    out_sr: SpatialRef
    offset: int
    count: int
    count_given: bool
    ids_only: bool
    count_only: bool
    extent_only: bool
    distinct: bool
    statistics: tuple[FieldStatistic, ...]
    group_by: tuple[str, ...]


def _field_name(name: str, param: str) -> str:
    field = resolve_field(name)
    if field is None:
        raise InvalidParameter(
            param, f"'{name.strip()[:60]}' is not a catalog field.", accepted=", ".join(FIELD_NAMES)
        )
    return field.name


def parse_out_fields(text: str | None) -> tuple[str, ...]:
    """``*`` or a comma list of field names; default OBJECTID only."""
    if text is None:
        return (OBJECTID,)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if "*" in names:
        return tuple(FIELD_NAMES)
    out = [_field_name(n, "outFields") for n in names]
    return tuple(dict.fromkeys(out)) or (OBJECTID,)


def parse_order_by(text: str | None) -> tuple[tuple[str, bool], ...]:
    """``Field [ASC|DESC], …`` as (canonical field, ascending) pairs."""
    if text is None:
        return ()
    out: list[tuple[str, bool]] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        words = part.split()
        ascending = True
        if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
            ascending = words[1].upper() == "ASC"
        elif len(words) != 1:
            raise InvalidParameter(
                "orderByFields",
                f"'{part[:60]}' is not 'Field [ASC|DESC]'.",
                accepted="Field [ASC|DESC], …",
            )
        out.append((_field_name(words[0], "orderByFields"), ascending))
    return tuple(out)


def parse_statistics(params: Params) -> tuple[FieldStatistic, ...]:
    """``outStatistics`` JSON: [{statisticType, onStatisticField, outStatisticFieldName}]."""
    accepted = '[{"statisticType": "count|min|max|avg|sum|stddev|var", "onStatisticField": "LowPS", "outStatisticFieldName": "n"}]'
    value = params.json("outStatistics", accepted)
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise InvalidParameter(
            "outStatistics", "it must be a non-empty JSON array.", accepted=accepted
        )
    out: list[FieldStatistic] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise InvalidParameter(
                "outStatistics", "each entry must be an object.", accepted=accepted
            )
        e = {str(k).lower(): v for k, v in entry.items()}
        text = str(e.get("statistictype", "")).strip().lower()
        kind = next((k for k in STATISTIC_TYPES if k == text), None)
        if kind is None:
            raise InvalidParameter(
                "outStatistics", f"statisticType '{text}' is not supported.", accepted=accepted
            )
        field = _field_name(str(e.get("onstatisticfield", "")), "outStatistics")
        name = str(e.get("outstatisticfieldname") or f"{kind}_{field}")
        out.append(FieldStatistic(kind, field, name))
    return tuple(out)


def parse_query(request: Request, params: Params, snapshot: ServiceSnapshot) -> CatalogQuery:
    """Parse every query parameter (6.3) into a CatalogQuery."""
    ctx = app_context(request)
    limits = service_limits(snapshot, ctx.settings)
    crs = service_crs(snapshot)
    object_ids = parse_int_list(params.get("objectIds"), "objectIds")
    geometry = parse_geometry(
        params.get("geometry"), parse_geometry_type(params.get("geometryType"))
    )
    if geometry is not None:
        in_sr = geometry.sr or parse_sr(params.get("inSR"), "inSR")
        src = resolve_crs(request, in_sr, "inSR", crs)
        geometry = transform_geometry(ctx.projector, geometry, src, crs)
    rel = params.get("spatialRel")
    if rel is not None and rel.lower() not in {r.lower() for r in SPATIAL_RELS}:
        raise InvalidParameter(
            "spatialRel", f"'{rel[:60]}' is not supported.", accepted=", ".join(SPATIAL_RELS)
        )
    pixel = parse_pixel_size(params.get("pixelSize"))
    dims: tuple[DimensionFilter, ...] = ()
    md = params.json("multidimensionalDefinition", "a JSON array of dimension definitions")
    if md is not None:
        dims = parse_md_definition(md, snapshot=snapshot)
    if object_ids is not None:
        items = ItemQuery(object_ids=object_ids)
    else:
        items = ItemQuery(
            where=parse_where(params.get("where"), max_length=ctx.settings.max_where_length),
            time=parse_time(params.get("time")),
            dimensions=dims,
            pixel_size=pixel[0] if pixel else None,
            extent=geometry.bbox if geometry is not None else None,
        )
    items = replace(items, order_by=parse_order_by(params.get("orderByFields")))
    out_sr = parse_sr(params.get("outSR"), "outSR")
    group_by = tuple(
        _field_name(n, "groupByFieldsForStatistics")
        for n in (params.get("groupByFieldsForStatistics") or "").split(",")
        if n.strip()
    )
    count_text = params.get("resultRecordCount")
    return CatalogQuery(
        items=items,
        geometry=geometry,
        out_fields=parse_out_fields(params.get("outFields")),
        return_geometry=params.flag("returnGeometry", True),
        out_crs=resolve_crs(request, out_sr, "outSR", crs),
        out_sr=out_sr or snapshot.spatial_reference,
        offset=params.integer("resultOffset", 0, minimum=0),
        count=min(
            params.integer("resultRecordCount", limits.max_record_count, minimum=1),
            limits.max_record_count,
        ),
        count_given=count_text is not None,
        ids_only=params.flag("returnIdsOnly", False),
        count_only=params.flag("returnCountOnly", False),
        extent_only=params.flag("returnExtentOnly", False),
        distinct=params.flag("returnDistinctValues", False),
        statistics=parse_statistics(params),
        group_by=group_by,
    )


def _footprint_json(request: Request, item: RasterItem, src: str, dst: str) -> dict[str, Any]:
    ring = list(item.footprint)
    if src != dst:
        xs, ys = app_context(request).projector.transform_points(
            [p[0] for p in ring], [p[1] for p in ring], src, dst
        )
        ring = list(zip(xs, ys, strict=True))
    if app_context(request).projector.is_geographic(dst):
        ring = clamp_geographic_ring(ring)
    return {"rings": [clockwise(ring)]}


def feature(
    request: Request, item: RasterItem, fields: tuple[str, ...], geometry: bool, src: str, dst: str
) -> dict[str, Any]:
    """One catalog item as a feature with the requested attributes (and footprint)."""
    attrs = item_attributes(item)
    out: dict[str, Any] = {"attributes": {name: attrs.get(name) for name in fields}}
    if geometry:
        out["geometry"] = _footprint_json(request, item, src, dst)
    return out


def field_json(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Field descriptions of the named catalog fields, in that order."""
    by_name = {f.name: f for f in CATALOG_FIELDS}
    return [by_name[n].to_json() for n in names if n in by_name]


def _statistics(rows: list[dict[str, Any]], q: CatalogQuery) -> dict[str, Any]:
    fields = field_json(q.group_by) + [
        {
            "name": s.out_name,
            "type": "esriFieldTypeInteger" if s.kind == "count" else "esriFieldTypeDouble",
            "alias": s.out_name,
        }
        for s in q.statistics
    ]
    features = [{"attributes": row} for row in rows[: q.count]]
    result: dict[str, Any] = {"displayFieldName": "", "fields": fields, "features": features}
    if len(rows) > q.count:  # one row per group, paged like any query
        result["exceededTransferLimit"] = True
    return result


def run_query(request: Request, snapshot: ServiceSnapshot, q: CatalogQuery) -> dict[str, Any]:
    """Execute a parsed query against the catalog (blocking; runs on the read pool)."""
    search = CatalogSearch(app_context(request).catalog)
    sel = CatalogSelection(snapshot.dataset.name, q.items, q.geometry)
    src = service_crs(snapshot)
    if q.count_only:
        return {"count": search.count(sel)}
    if q.statistics:
        rows = search.statistics(sel, q.statistics, q.group_by, q.offset, q.count + 1)
        return _statistics(rows, q)
    if q.ids_only:
        paged = q.count_given or q.offset
        ids = search.ids(sel, q.offset, q.count if paged else None)
        return {"objectIdFieldName": OBJECTID, "objectIds": ids}
    if q.extent_only:
        extent, count = search.extent(sel)
        return {"extent": _extent_json(request, extent, src, q), "count": count}
    if q.distinct:
        values = search.distinct(sel, q.out_fields, q.offset, q.count + 1)
        page = [
            {"attributes": dict(zip(q.out_fields, row, strict=True))} for row in values[: q.count]
        ]
        return _feature_set(snapshot, q, page, len(values) > q.count, with_geometry=False)
    found = search.find(sel, q.offset, q.count + 1)
    features = [
        feature(request, it, q.out_fields, q.return_geometry, src, q.out_crs)
        for it in found[: q.count]
    ]
    return _feature_set(
        snapshot, q, features, len(found) > q.count, with_geometry=q.return_geometry
    )


def _feature_set(
    snapshot: ServiceSnapshot,
    q: CatalogQuery,
    features: list[dict[str, Any]],
    more: bool,
    *,
    with_geometry: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "objectIdFieldName": OBJECTID,
        "geometryType": "esriGeometryPolygon",
        "spatialReference": q.out_sr.to_json(),
        "fields": field_json(q.out_fields),
        "features": features,
    }
    if not with_geometry:
        out.pop("geometryType")
    if more:
        out["exceededTransferLimit"] = True
    return out


def _extent_json(request: Request, ext: Extent | None, src: str, q: CatalogQuery) -> dict[str, Any]:
    projector = app_context(request).projector
    if ext is not None and src != q.out_crs:
        ext = projector.transform_extent(ext, src, q.out_crs)
    if ext is not None and projector.is_geographic(q.out_crs):
        ext = clamp_geographic(ext)
    sr = q.out_sr.to_json()
    if ext is None:
        return {"xmin": None, "ymin": None, "xmax": None, "ymax": None, "spatialReference": sr}
    return {
        "xmin": ext.xmin,
        "ymin": ext.ymin,
        "xmax": ext.xmax,
        "ymax": ext.ymax,
        "spatialReference": sr,
    }


@router.api_route(SVC + "/query", methods=METHODS)
@router.api_route(FSVC + "/query", methods=METHODS)
async def query(request: Request) -> Response:
    """``{svc}/query`` (6.3)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Catalog")
    params = await read_params(request)
    f = params.f or "html"
    if f == "html":
        result = None
        if has_operation_input(params):
            q = await run_blocking(request, parse_query, request, params, snapshot)
            result = await run_blocking(request, run_query, request, snapshot, q)
        return HTMLResponse(operation_page(request, "query", params, result=result))
    if f not in ("json", "pjson"):
        raise InvalidParameter(
            "f", f"'{f}' is not a format of query.", accepted="json, pjson or html"
        )
    q = await run_blocking(request, parse_query, request, params, snapshot)
    data = await run_blocking(request, run_query, request, snapshot, q)
    return json_response(request, params, data, snapshot=snapshot)


__all__ = [
    "CatalogQuery",
    "feature",
    "field_json",
    "parse_order_by",
    "parse_out_fields",
    "parse_query",
    "router",
    "run_query",
]
