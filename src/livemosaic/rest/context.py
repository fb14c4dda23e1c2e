"""What every route needs: the application context, the service snapshot, blocking work.

A service request reads its snapshot from the registry exactly once (:func:`service_snapshot`)
and keeps it on ``request.state`` for the rest of the request, so a refresh in the middle
cannot mix two versions. GDAL and catalog work runs on the context's bounded thread pool
with the configured timeout (:func:`run_blocking`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request

from livemosaic.core.models import ServiceSnapshot, SpatialRef
from livemosaic.errors import (
    InvalidParameter,
    LiveMosaicError,
    NotSupported,
    ServiceNotFound,
    ServiceStopped,
)
from livemosaic.rest.auth import check_service_access, hide_missing_service

if TYPE_CHECKING:
    from livemosaic.app import AppContext

T = TypeVar("T")

# Path templates of an image service, without and with a folder (relative to {root}).
SVC = "/rest/services/{name}/imageserver"
FSVC = "/rest/services/{folder}/{name}/imageserver"


def app_context(request: Request) -> AppContext:
    """The AppContext the application was built with."""
    ctx: AppContext = request.app.state.ctx
    return ctx


def service_snapshot(request: Request) -> ServiceSnapshot:
    """The service's current snapshot, read once per request.

    Raises ServiceNotFound / ServiceStopped, and TokenRequired / Forbidden / TokenInvalid when
    the caller may not read the service (secured services, spec 4).
    """
    cached = getattr(request.state, "snapshot", None)
    if isinstance(cached, ServiceSnapshot):
        return cached
    folder = str(request.path_params.get("folder", ""))
    name = str(request.path_params.get("name", ""))
    snapshot = app_context(request).registry.find(folder, name)
    if snapshot is None:
        hide_missing_service(request, folder)
        raise ServiceNotFound(
            f"Service '{_spelled(request, folder, name)}.ImageServer' does not exist."
        )
    check_service_access(request, snapshot.definition)
    request.state.snapshot = snapshot
    if snapshot.definition.configured_state == "STOPPED":
        text = f"Service '{snapshot.qualified_name}' is not started."
        raise ServiceStopped(text, message=text, next_step="Start it with the admin API or CLI.")
    return snapshot


def _spelled(request: Request, folder: str, name: str) -> str:
    """``folder/name`` as the client spelled them (routing sees lower case)."""
    original = request.scope.get("state", {}).get("original_path", "")
    segments = str(original).split("/")
    lowered = [s.lower() for s in segments]
    if "imageserver" in lowered:
        i = lowered.index("imageserver")
        count = 2 if folder else 1
        return "/".join(segments[max(0, i - count) : i])
    return f"{folder}/{name}" if folder else name


def require_capability(snapshot: ServiceSnapshot, capability: str) -> None:
    """NotSupported when the service does not list ``capability`` (Image, Catalog, …)."""
    caps = {c.strip().lower() for c in snapshot.definition.capabilities.split(",")}
    if capability.lower() not in caps:
        raise NotSupported(f"The service does not have the {capability} capability.")


async def run_blocking(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on the read thread pool, bounded by ``request_timeout_seconds``."""
    ctx = app_context(request)
    loop = asyncio.get_running_loop()
    call = functools.partial(fn, *args, **kwargs)
    timeout = ctx.settings.request_timeout_seconds
    try:
        return await asyncio.wait_for(loop.run_in_executor(ctx.executor, call), timeout)
    except TimeoutError:
        raise LiveMosaicError(
            f"The request took longer than the limit of {timeout:g} seconds.",
            next_step="Ask for a smaller area or image, or raise LIVEMOSAIC_REQUEST_TIMEOUT_SECONDS.",
        ) from None


def service_crs(snapshot: ServiceSnapshot) -> str:
    """The CRS key of the service (its dataset's CRS; EPSG:4326 while the dataset is empty)."""
    return snapshot.dataset.crs or "EPSG:4326"


def resolve_crs(request: Request, sr: SpatialRef | None, name: str, default: str) -> str:
    """The CRS key of a client spatial reference; ``default`` when None."""
    if sr is None:
        return default
    try:
        return app_context(request).projector.validate(sr)
    except LiveMosaicError as exc:
        raise InvalidParameter(
            name, exc.reason, accepted="a wkid or WKT the server knows"
        ) from None


def public_base(request: Request) -> str:
    """``scheme://host[:port]`` as the client sees this server."""
    return f"{request.url.scheme}://{request.url.netloc}"


def root_path(request: Request) -> str:
    """``/{root}`` as configured (for links)."""
    return "/" + app_context(request).settings.root


__all__ = [
    "FSVC",
    "SVC",
    "app_context",
    "public_base",
    "require_capability",
    "resolve_crs",
    "root_path",
    "run_blocking",
    "service_crs",
    "service_snapshot",
]
