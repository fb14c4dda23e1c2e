"""The live viewer: an OpenLayers page for any image service, following it over WebSocket.

``{root}/livemosaic/viewer/{folder}/{name}`` (or ``…/viewer/{name}`` for a root service)
serves a page that draws the service with ``exportImage``, offers a time slider and pickers
for variables and dimensions, and redraws itself when a ``serviceRefreshed`` message arrives
(docs/notifications.md). The JavaScript and CSS are a bundle built from ``viewer/`` in the
repository and shipped in ``rest/static/viewer``: no CDN, the page works on closed networks.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from livemosaic import __version__
from livemosaic.core.basemap import BaseLines, area_of_interest, basemap_near
from livemosaic.core.models import ServiceSnapshot
from livemosaic.errors import NotFound
from livemosaic.rest.context import app_context, service_snapshot
from livemosaic.rest.html import render
from livemosaic.rest.notify import WS_PATH

router = APIRouter()
METHODS = ["GET", "POST"]

VIEWER_PATH = "/livemosaic/viewer"
STATIC_PATH = "/livemosaic/static/viewer"
STATIC_DIR = Path(__file__).parent / "static" / "viewer"
BASEMAP_PATH = "/livemosaic/basemap"
ASSETS = {
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
    "third-party-licenses.txt": "text/plain; charset=utf-8",
}


@functools.cache
def asset_version(name: str) -> str:
    """A short hash of a bundled file, appended to its URL so browsers never run a stale bundle."""
    try:
        return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    except OSError:
        return __version__


def _prefix(request: Request) -> str:
    """``{proxy prefix}/{root}`` for links (HTTP paths are matched case-insensitively)."""
    root = app_context(request).settings.root
    return f"{request.scope.get('root_path', '')}/{root}"


def viewer_url(request: Request, snapshot: ServiceSnapshot) -> str:
    """The path of the live viewer of a service (for links from its ``f=html`` page)."""
    return f"{_prefix(request)}{VIEWER_PATH}/{snapshot.qualified_name}"


def viewer_config(request: Request, snapshot: ServiceSnapshot) -> dict[str, Any]:
    """What the page script needs: service names and the URLs to call."""
    prefix = _prefix(request)
    root = app_context(request).settings.root
    return {
        "service": f"{snapshot.qualified_name}.ImageServer",
        "title": snapshot.qualified_name,
        "serviceUrl": f"{prefix}/rest/services/{snapshot.qualified_name}/ImageServer",
        "htmlUrl": f"{prefix}/rest/services/{snapshot.qualified_name}/ImageServer?f=html",
        # WebSocket paths are not case-normalised like HTTP ones: use the routed spelling
        "wsPath": f"{request.scope.get('root_path', '')}/{root.lower()}{WS_PATH}",
        "version": snapshot.version,
        "basemapUrl": f"{prefix}{BASEMAP_PATH}/{snapshot.qualified_name}",
    }


def _page(request: Request) -> Response:
    snapshot = service_snapshot(request)
    prefix = _prefix(request)
    html = render(
        "viewer.html",
        title=f"{snapshot.qualified_name} - livemosaic live viewer",
        config=viewer_config(request, snapshot),
        script_url=f"{prefix}{STATIC_PATH}/viewer.js?v={asset_version('viewer.js')}",
        style_url=f"{prefix}{STATIC_PATH}/viewer.css?v={asset_version('viewer.css')}",
        licenses_url=f"{prefix}{STATIC_PATH}/third-party-licenses.txt",
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.api_route(VIEWER_PATH + "/{name}", methods=METHODS)
async def viewer_root_service(request: Request) -> Response:
    """The live viewer of a service in the root folder."""
    return _page(request)


@router.api_route(VIEWER_PATH + "/{folder}/{name}", methods=METHODS)
async def viewer_folder_service(request: Request) -> Response:
    """The live viewer of a service in a folder."""
    return _page(request)


@functools.cache
def base_lines() -> BaseLines:
    """The shipped coastlines and borders (read once)."""
    return BaseLines.from_json(json.loads((STATIC_DIR / "basemap.json").read_text()))


def _basemap(request: Request) -> Response:
    """Coastlines and borders near a service, in its spatial reference, as GeoJSON (cached per
    published snapshot version)."""
    snapshot = service_snapshot(request)
    ctx = app_context(request)
    key = ("basemap", snapshot.qualified_name.lower(), snapshot.version)
    body = ctx.cache.get(key)
    if body is None:
        crs = snapshot.dataset.crs or "EPSG:4326"
        lines = base_lines()
        area = area_of_interest(snapshot.summary.extent, crs, ctx.projector)
        layers = basemap_near(lines, area, crs, ctx.projector)
        features = [
            {
                "type": "Feature",
                "properties": {"layer": name},
                "geometry": {"type": "MultiLineString", "coordinates": coordinates},
            }
            for name, coordinates in layers.items()
            if coordinates
        ]
        collection = {"type": "FeatureCollection", "source": lines.source, "features": features}
        body = json.dumps(collection, separators=(",", ":")).encode()
        ctx.cache[key] = body
    return Response(
        body, media_type="application/geo+json", headers={"Cache-Control": "max-age=3600"}
    )


@router.api_route(BASEMAP_PATH + "/{name}", methods=METHODS)
async def basemap_root_service(request: Request) -> Response:
    """Coastlines and borders around a service in the root folder, in its projection."""
    return await asyncio.to_thread(_basemap, request)


@router.api_route(BASEMAP_PATH + "/{folder}/{name}", methods=METHODS)
async def basemap_folder_service(request: Request) -> Response:
    """Coastlines and borders around a service in a folder, in its projection."""
    return await asyncio.to_thread(_basemap, request)


@router.api_route(STATIC_PATH + "/{filename}", methods=METHODS)
async def viewer_asset(filename: str) -> Response:
    """The viewer bundle (JavaScript, CSS) and the licences of the libraries inside it."""
    media_type = ASSETS.get(filename)
    path = STATIC_DIR / filename
    if media_type is None or not path.is_file():
        raise NotFound(f"'{filename[:80]}' is not a file of the live viewer.")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=86400"})


__all__ = ["STATIC_PATH", "VIEWER_PATH", "asset_version", "router", "viewer_config", "viewer_url"]
