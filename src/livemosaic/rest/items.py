"""Raster catalog items (spec 6.10): ``{svc}/{rasterId}`` and its children.

Items are read live from the catalog, so a removed item disappears at once, before any
refresh. ``thumbnail`` and ``image`` export the item alone (a LockRaster rule on its id).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from livemosaic.core.fields import item_attributes
from livemosaic.core.geographic import clamp_geographic
from livemosaic.core.models import MAX_CATALOG_INT, RasterItem, ServiceSnapshot
from livemosaic.core.mosaic_rules import MosaicRule
from livemosaic.errors import ItemNotFound
from livemosaic.rest.catalog_query import feature
from livemosaic.rest.context import (
    FSVC,
    SVC,
    app_context,
    require_capability,
    run_blocking,
    service_crs,
    service_snapshot,
)
from livemosaic.rest.export_ops import answer_export, export_html, image_format_param, parse_export
from livemosaic.rest.formats import resource_response
from livemosaic.rest.html import Link, resource_page
from livemosaic.rest.imageserver import service_url
from livemosaic.rest.params import Params, read_params
from livemosaic.rest.service_json import extent_json
from livemosaic.rest.thematic_json import thematic_for

router = APIRouter()
METHODS = ["GET", "POST"]
ITEM = "/{raster_id:int}"
THUMBNAIL_SIZE = 200


async def _item(request: Request) -> tuple[ServiceSnapshot, Params, RasterItem]:
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Catalog")
    params = await read_params(request)
    raster_id = int(request.path_params["raster_id"])
    if not 0 < raster_id <= MAX_CATALOG_INT:  # no such OBJECTID can exist
        raise ItemNotFound(f"Raster {str(raster_id)[:40]} does not exist in this service.")
    ctx = app_context(request)
    item = await run_blocking(request, ctx.catalog.get_item, snapshot.dataset.name, raster_id)
    if item.id != raster_id:  # a store must not hand out another item; be explicit anyway
        raise ItemNotFound(f"Raster {raster_id} does not exist in this service.")
    return snapshot, params, item


def _item_url(request: Request, snapshot: ServiceSnapshot, item: RasterItem) -> str:
    return f"{service_url(request, snapshot)}/{item.id}"


def _page(
    request: Request, snapshot: ServiceSnapshot, item: RasterItem, title: str, data: Any
) -> str:
    base = _item_url(request, snapshot, item)
    children = [
        Link("Service", service_url(request, snapshot)),
        Link("info", f"{base}/info"),
        Link("info/keyProperties", f"{base}/info/keyProperties"),
        Link("thumbnail", f"{base}/thumbnail"),
        Link("image", f"{base}/image"),
    ]
    return resource_page(request, title, data, children=children)


@router.api_route(SVC + ITEM, methods=METHODS)
@router.api_route(FSVC + ITEM, methods=METHODS)
async def item_resource(request: Request) -> Response:
    """``{svc}/{rasterId}``: the item's attributes and footprint."""
    snapshot, params, item = await _item(request)
    crs = service_crs(snapshot)
    names = tuple(item_attributes(item))
    data = feature(request, item, names, True, crs, crs)
    data["geometry"]["spatialReference"] = snapshot.spatial_reference.to_json()
    return resource_response(
        request,
        params,
        data,
        lambda: _page(request, snapshot, item, f"Raster {item.id}", data),
        snapshot=snapshot,
    )


def item_info(
    snapshot: ServiceSnapshot, item: RasterItem, *, geographic: bool = False
) -> dict[str, Any]:
    """The ``{svc}/{rasterId}/info`` resource (``geographic``: the extent is published clamped)."""
    same_crs = item.native_crs == snapshot.dataset.crs
    psx = item.cell_size_x if same_crs else item.low_ps
    psy = item.cell_size_y if same_crs else item.low_ps
    return {
        "extent": extent_json(
            clamp_geographic(item.extent) if geographic else item.extent,
            snapshot.spatial_reference.to_json(),
        ),
        "pixelSizeX": psx,
        "pixelSizeY": psy,
        "bandCount": item.band_count,
        "pixelType": item.pixel_type,
        "statistics": [[s.min, s.max, s.mean, s.std] for s in item.stats],
        "histograms": [],
        "origin": {"x": item.extent.xmin, "y": item.extent.ymax},
        "blockWidth": min(item.width, 512),
        "blockHeight": min(item.height, 512),
        "firstPyramidLevel": 1 if item.overview_count else 0,
        "maxPyramidLevel": item.overview_count,
    }


def item_key_properties(item: RasterItem) -> dict[str, Any]:
    """The ``{svc}/{rasterId}/info/keyProperties`` resource."""
    out: dict[str, Any] = {
        "BandProperties": [{"BandName": n} for n in item.band_names],
        "LowCellSize": item.low_ps,
        "HighCellSize": item.high_ps,
        "DataType": "Generic",
    }
    if item.time is not None:
        out["AcquisitionDate"] = item.time
    if item.variable:
        out["Variable"] = item.variable
        out["Dimensions"] = dict(item.dimensions)
    return out


@router.api_route(SVC + ITEM + "/info", methods=METHODS)
@router.api_route(FSVC + ITEM + "/info", methods=METHODS)
async def info(request: Request) -> Response:
    """``{svc}/{rasterId}/info``."""
    snapshot, params, item = await _item(request)
    geographic = app_context(request).projector.is_geographic(service_crs(snapshot))
    data = item_info(snapshot, item, geographic=geographic)
    return resource_response(
        request,
        params,
        data,
        lambda: _page(request, snapshot, item, f"Raster {item.id} info", data),
        snapshot=snapshot,
    )


@router.api_route(SVC + ITEM + "/info/keyproperties", methods=METHODS)
@router.api_route(FSVC + ITEM + "/info/keyproperties", methods=METHODS)
async def key_properties(request: Request) -> Response:
    """``{svc}/{rasterId}/info/keyProperties``."""
    snapshot, params, item = await _item(request)
    data = item_key_properties(item)
    return resource_response(
        request, params, data,
        lambda: _page(request, snapshot, item, f"Raster {item.id} keyProperties", data), snapshot=snapshot,
    )  # fmt: skip


def _locked(item: RasterItem) -> MosaicRule:
    return MosaicRule(method="LockRaster", lock_raster_ids=(item.id or 0,))


@router.api_route(SVC + ITEM + "/thumbnail", methods=METHODS)
@router.api_route(FSVC + ITEM + "/thumbnail", methods=METHODS)
async def thumbnail(request: Request) -> Response:
    """``{svc}/{rasterId}/thumbnail``: the item alone, 200 pixels on its longer side."""
    snapshot, _params, item = await _item(request)
    ext = item.extent
    scale = THUMBNAIL_SIZE / max(ext.width, ext.height, 1e-12)
    size = f"{max(1, round(ext.width * scale))},{max(1, round(ext.height * scale))}"
    params = Params([("size", size), ("format", "jpgpng"), ("f", "image")])
    parsed = parse_export(
        request,
        params,
        snapshot,
        default_extent=ext,
        mosaic_rule=_locked(item),
        thematic=await thematic_for(request, snapshot),
    )
    return await answer_export(request, params, snapshot, parsed, "image")


@router.api_route(SVC + ITEM + "/image", methods=METHODS)
@router.api_route(FSVC + ITEM + "/image", methods=METHODS)
async def image(request: Request) -> Response:
    """``{svc}/{rasterId}/image``: exportImage restricted to the item (default bbox: its extent)."""
    snapshot, params, item = await _item(request)
    f = image_format_param(params)
    if f == "html":
        return export_html(request, params)
    parsed = parse_export(
        request,
        params,
        snapshot,
        default_extent=item.extent,
        mosaic_rule=_locked(item),
        thematic=await thematic_for(request, snapshot),
    )
    return await answer_export(request, params, snapshot, parsed, f)


__all__ = ["item_info", "item_key_properties", "router"]
