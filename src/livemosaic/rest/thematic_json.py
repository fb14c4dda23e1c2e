"""``colormap``, ``rasterAttributeTable`` and ``legend`` of an image service (spec 6.8, 6.9),
the ``hasColormap`` / ``hasRasterAttributeTable`` flags and the export defaults of thematic
services (nearest neighbour, drawn with the palette; :mod:`livemosaic.core.thematic`).

A thematic service's ``defaultResamplingMethod`` reads ``NearestNeighbor`` when it is the
publishing default (Bilinear); an explicit Cubic or Majority, or a request's
``interpolation``, still decides.

* ``{svc}/colormap`` → ``{"colormap": [[value, red, green, blue], …]}``; 400 when the service
  has no colours (``hasColormap`` false).
* ``{svc}/rasterAttributeTable`` → a feature set without geometry: ``objectIdFieldName``,
  ``fields`` (``OBJECTID`` then the table's columns), ``features[{attributes}]``; 400 when
  ``hasRasterAttributeTable`` is false.
* ``{svc}/legend`` (``bandIds``, ``renderingRule``, ``variable`` accepted) → ``{"layers":
  [{"layerId": 0, "layerName", "layerType": "Raster Layer", "minScale", "maxScale",
  "legendType", "legend": [{"label", "url", "imageData", "contentType", "height", "width",
  "values"}]}]}`` with 20 x 20 PNG swatches: ``Unique Values`` (one entry per class) for a
  thematic service drawn with its colours, ``RGB Composite`` (red, green, blue: the bands
  shown) for three or more bands, ``Stretched`` (high and low value) otherwise.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from typing import Any

import numpy as np
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from livemosaic.core.export import ExportRequest
from livemosaic.core.models import Extent, ServiceSnapshot
from livemosaic.core.pixels import EIGHT_BIT_FORMATS, display_bands
from livemosaic.core.ports import CatalogStore, ImageEncoder, PixelBlock
from livemosaic.core.service_properties import service_properties
from livemosaic.core.thematic import (
    THEMATIC_RESAMPLING,
    AttributeTable,
    Thematic,
    may_be_thematic,
    thematic_of,
)
from livemosaic.errors import NotSupported
from livemosaic.rest.context import (
    FSVC,
    SVC,
    app_context,
    require_capability,
    run_blocking,
    service_snapshot,
)
from livemosaic.rest.formats import resource_response
from livemosaic.rest.html import Link, resource_page
from livemosaic.rest.image_params import parse_band_ids
from livemosaic.rest.params import Params, read_params
from livemosaic.rest.rules import parse_rendering_rule

router = APIRouter()
METHODS = ["GET", "POST"]
SWATCH = 20  # legend symbols are 20 x 20 pixels at 96 dpi, as in ArcGIS
RAT_TYPES = {"integer": "esriFieldTypeInteger", "real": "esriFieldTypeDouble"}
STRING_LENGTH = 256


def service_thematic(catalog: CatalogStore, snapshot: ServiceSnapshot) -> Thematic | None:
    """The thematic description of a service (blocking: one catalog row)."""
    return thematic_of(catalog, snapshot.dataset.name, snapshot.summary)


async def thematic_for(request: Request, snapshot: ServiceSnapshot) -> Thematic | None:
    """A service's thematic description, looked up once per snapshot version (one catalog row
    on a worker thread the first time; nothing to read for a service that cannot be
    thematic). Like the rest of the service's description it changes with a refresh."""
    if not may_be_thematic(snapshot.summary):
        return None
    ctx = app_context(request)
    key = ("thematic", snapshot.qualified_name.lower(), snapshot.version)
    if key in ctx.cache:
        cached: Thematic | None = ctx.cache[key]
        return cached
    thematic = await run_blocking(request, service_thematic, ctx.catalog, snapshot)
    ctx.cache[key] = thematic
    return thematic


def _bilinear_default(snapshot: ServiceSnapshot) -> bool:
    """True when the service's defaultResamplingMethod is the publishing default, Bilinear,
    which a thematic service reads as NearestNeighbor (Cubic or Majority are kept)."""
    return service_properties(snapshot.definition).default_resampling_method == "Bilinear"


def thematic_flags(snapshot: ServiceSnapshot, thematic: Thematic | None) -> dict[str, Any]:
    """The service-info keys a thematic description sets."""
    out: dict[str, Any] = {
        "hasColormap": bool(thematic and thematic.colormap),
        "hasRasterAttributeTable": bool(thematic and thematic.table is not None),
    }
    if thematic is None:
        return out
    if not snapshot.definition.prop("serviceDataType", "").strip():
        out["serviceDataType"] = "esriImageServiceDataTypeThematic"
    if _bilinear_default(snapshot):
        out["defaultResamplingMethod"] = "NearestNeighbor"
    return out


def thematic_export(
    thematic: Thematic | None, snapshot: ServiceSnapshot, params: Params, export: ExportRequest
) -> ExportRequest:
    """An export with the defaults of a thematic service: nearest neighbour unless the request
    or the service names a resampling, and (for the 8-bit display formats) drawn with the
    palette unless the request has a renderingRule. Data formats (tiff, lerc, bip, bsq)
    keep the class codes: clients colour them with ``{svc}/colormap``."""
    if thematic is None:
        return export
    changes: dict[str, Any] = {}
    if not (params.get("interpolation") or "").strip() and _bilinear_default(snapshot):
        changes["resampling"] = THEMATIC_RESAMPLING
    if params.get("renderingRule") is None and export.format in EIGHT_BIT_FORMATS:
        rule = thematic.palette_rule()
        if rule is not None and not export.band_ids:
            changes["rendering_rule"] = rule
    return replace(export, **changes) if changes else export


# --- resources ------------------------------------------------------------------------------


def colormap_json(thematic: Thematic | None) -> dict[str, Any]:
    """The colormap resource (NotSupported without colours)."""
    if thematic is None or not thematic.colormap:
        raise NotSupported("The service has no colormap (hasColormap is false).")
    return {"colormap": [list(entry) for entry in thematic.colormap]}


def _field_json(name: str, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": kind, "alias": name, "domain": None}
    if kind == "esriFieldTypeString":
        out["length"] = STRING_LENGTH
    return out


def rat_json(table: AttributeTable | None) -> dict[str, Any]:
    """The rasterAttributeTable resource (NotSupported without a table)."""
    if table is None:
        raise NotSupported(
            "The service has no raster attribute table (hasRasterAttributeTable is false)."
        )
    fields = [_field_json("OBJECTID", "esriFieldTypeOID")]
    fields += [
        _field_json(f.name, RAT_TYPES.get(f.type, "esriFieldTypeString")) for f in table.fields
    ]
    features = []
    for oid, row in enumerate(table.rows, start=1):
        attrs: dict[str, Any] = {"OBJECTID": oid}
        for f, cell in zip(table.fields, row, strict=False):
            attrs[f.name] = cell
        features.append({"attributes": attrs})
    return {"objectIdFieldName": "OBJECTID", "fields": fields, "features": features}


def _swatch(encoder: ImageEncoder, rgb: tuple[int, int, int]) -> tuple[str, str]:
    """(url id, base64 PNG) of a 20 x 20 swatch of one colour."""
    data = np.empty((3, SWATCH, SWATCH), dtype=np.uint8)
    for band, value in enumerate(rgb):
        data[band] = value
    block = PixelBlock(data, np.ones((SWATCH, SWATCH), dtype=bool))
    image = encoder.encode(block, "png", extent=Extent(0, 0, SWATCH, SWATCH), crs="EPSG:3857")
    return hashlib.md5(image.content).hexdigest(), base64.b64encode(image.content).decode()  # noqa: S324


def _entry(
    encoder: ImageEncoder, label: str, rgb: tuple[int, int, int], values: list[Any]
) -> dict[str, Any]:
    url, data = _swatch(encoder, rgb)
    return {"label": label, "url": url, "imageData": data, "contentType": "image/png",
            "height": SWATCH, "width": SWATCH, "values": values}  # fmt: skip


def legend_json(
    snapshot: ServiceSnapshot,
    thematic: Thematic | None,
    encoder: ImageEncoder,
    band_ids: tuple[int, ...] | None,
    raw: bool,
) -> dict[str, Any]:
    """The legend resource; ``raw`` when the request's rendering rule turns the palette off."""
    summary = snapshot.summary
    names = summary.band_names or tuple(f"Band_{i + 1}" for i in range(summary.band_count))
    entries: list[dict[str, Any]]
    if thematic is not None and thematic.colormap and not raw and not band_ids:
        legend_type = "Unique Values"
        entries = [_entry(encoder, c.label, c.rgb, [c.value]) for c in thematic.legend()]
    else:
        shown = list(band_ids) if band_ids else None
        if shown is None:
            default = service_properties(snapshot.definition).default_band_ids
            shown = list(display_bands(summary.band_count, default) or range(summary.band_count))
        if len(shown) >= 3:
            legend_type = "RGB Composite"
            colours = (("Red", (255, 0, 0)), ("Green", (0, 255, 0)), ("Blue", (0, 0, 255)))
            entries = [_entry(encoder, f"{c}: {names[b] if b < len(names) else b}", rgb, [])
                       for (c, rgb), b in zip(colours, shown[:3], strict=True)]  # fmt: skip
        else:
            legend_type = "Stretched"
            band = shown[0] if shown else 0
            stats = summary.band_stats[band] if band < len(summary.band_stats) else None
            high = f"High : {stats.max:g}" if stats is not None else "High"
            low = f"Low : {stats.min:g}" if stats is not None else "Low"
            entries = [_entry(encoder, high, (255, 255, 255), []),
                       _entry(encoder, low, (0, 0, 0), [])]  # fmt: skip
    props = service_properties(snapshot.definition)
    layer = {
        "layerId": 0,
        "layerName": snapshot.definition.name,
        "layerType": "Raster Layer",
        "minScale": props.min_scale,
        "maxScale": props.max_scale,
        "legendType": legend_type,
        "legend": entries,
    }
    return {"layers": [layer]}


def _answer(
    request: Request, params: Params, snapshot: ServiceSnapshot, title: str, data: dict[str, Any]
) -> Response:
    base = f"{request.url.path.rsplit('/', 1)[0]}"
    return resource_response(
        request,
        params,
        data,
        lambda: resource_page(request, title, data, children=[Link("Service", base)]),
        snapshot=snapshot,
        metadata=True,
    )


@router.api_route(SVC + "/colormap", methods=METHODS)
@router.api_route(FSVC + "/colormap", methods=METHODS)
async def colormap(request: Request) -> Response:
    """``{svc}/colormap`` (6.8)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    thematic = await thematic_for(request, snapshot)
    return _answer(request, params, snapshot, "Colormap", colormap_json(thematic))


@router.api_route(SVC + "/rasterattributetable", methods=METHODS)
@router.api_route(FSVC + "/rasterattributetable", methods=METHODS)
async def raster_attribute_table(request: Request) -> Response:
    """``{svc}/rasterAttributeTable`` (6.8)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    thematic = await thematic_for(request, snapshot)
    table = thematic.table if thematic is not None else None
    return _answer(request, params, snapshot, "Raster Attribute Table", rat_json(table))


@router.api_route(SVC + "/legend", methods=METHODS)
@router.api_route(FSVC + "/legend", methods=METHODS)
async def legend(request: Request) -> Response:
    """``{svc}/legend`` (6.9)."""
    snapshot = service_snapshot(request)
    require_capability(snapshot, "Image")
    params = await read_params(request)
    ctx = app_context(request)
    band_ids = parse_band_ids(params.get("bandIds"), snapshot.summary.band_count)
    rule_text = params.get("renderingRule")
    parse_rendering_rule(rule_text)  # a bad rule is a 400 here as in exportImage
    thematic = await thematic_for(request, snapshot)
    data = await run_blocking(
        request, legend_json, snapshot, thematic, ctx.encoder, band_ids, rule_text is not None
    )
    return _answer(request, params, snapshot, "Legend", data)


__all__ = [
    "colormap_json",
    "legend_json",
    "rat_json",
    "router",
    "service_thematic",
    "thematic_export",
    "thematic_flags",
]
