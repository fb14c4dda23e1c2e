"""Router assembly: every REST router under ``/{root}``, the catch-all for unknown operations last.

Token issuing (``/{root}/tokens``, ``/{root}/admin/generateToken``, …), the admin API under
``/{root}/admin``, the services directory, the image service routers, the GP service
under ``rest/services/System`` and the livemosaic extensions under ``/{root}/livemosaic``
(notification WebSocket, live viewer, ingest and quarantine endpoints) are mounted here,
without one knowing the others.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from livemosaic.rest import (
    admin,
    catalog_query,
    directory,
    export_ops,
    gpserver,
    imageserver,
    ingest,
    items,
    missing,
    notify,
    pixel_ops,
    thematic_json,
    tokens,
    viewer,
)

ROUTERS: tuple[APIRouter, ...] = (
    # routes are tried in order, and a request pays for every route tried before its own:
    # the operations map clients call for every tile and click come first (no other route
    # matches their paths, so the order changes no answer)
    export_ops.router,
    pixel_ops.router,
    tokens.router,  # before admin: {root}/admin/generateToken needs no token
    admin.router,
    directory.router,
    imageserver.router,
    thematic_json.router,  # {svc}/colormap, {svc}/rasterAttributeTable, {svc}/legend
    catalog_query.router,
    items.router,
    gpserver.router,
    notify.router,  # {root}/livemosaic/ws
    viewer.router,  # {root}/livemosaic/viewer/…, {root}/livemosaic/static/viewer/…
    ingest.router,  # {root}/livemosaic/ingest, {root}/livemosaic/quarantine
    missing.router,  # {root}/livemosaic/missing
    imageserver.fallback_router,  # must stay last: it matches any child of a service
)


def include_routers(app: FastAPI, root: str, extra: tuple[APIRouter, ...] = ()) -> None:
    """Mount the REST routers (and ``extra`` ones, before the catch-all) under ``/{root}``."""
    prefix = "/" + root.strip("/").lower()
    routers = ROUTERS[:-1] + extra + ROUTERS[-1:]
    for router in routers:
        app.include_router(router, prefix=prefix, include_in_schema=False)


__all__ = ["ROUTERS", "include_routers"]
