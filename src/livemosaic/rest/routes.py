"""Router assembly: every REST router under ``/{root}``, the catch-all for unknown operations last.

Later issues add their routers here (the GP service under ``rest/services/System`` and the
admin API under ``/{root}/admin``) without touching the image service modules.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from livemosaic.rest import (
    catalog_query,
    directory,
    export_ops,
    imageserver,
    items,
    pixel_ops,
)

ROUTERS: tuple[APIRouter, ...] = (
    directory.router,
    imageserver.router,
    export_ops.router,
    catalog_query.router,
    pixel_ops.router,
    items.router,
    imageserver.fallback_router,  # must stay last: it matches any child of a service
)


def include_routers(app: FastAPI, root: str, extra: tuple[APIRouter, ...] = ()) -> None:
    """Mount the REST routers (and ``extra`` ones, before the catch-all) under ``/{root}``."""
    prefix = "/" + root.strip("/").lower()
    routers = ROUTERS[:-1] + extra + ROUTERS[-1:]
    for router in routers:
        app.include_router(router, prefix=prefix, include_in_schema=False)


__all__ = ["ROUTERS", "include_routers"]
