"""What every route needs: the application context, the service snapshot, blocking work.

A service request reads its snapshot from the registry exactly once (:func:`service_snapshot`)
and keeps it on ``request.state`` for the rest of the request, so a refresh in the middle
cannot mix two versions. GDAL and catalog work runs on the context's bounded thread pool
with the configured timeout (:func:`run_blocking`), never on the event loop.

Image work that allocates in proportion to the request (exportImage, identify, getSamples)
goes through :func:`run_admitted`: it waits (bounded) for its estimated bytes in the process's
admission gate — 503 busy with Retry-After when there is no room in time — and then runs with
a :class:`~livemosaic.core.cancel.CancelToken` whose deadline is ``request_timeout_seconds``
from admission. The work is stopped at its next check when the deadline passes (error 504) or
the client disconnects; its bytes return to the gate when the worker thread has really
finished, and after a large request freed heap memory is handed back to the system.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request

from livemosaic.adapters.memory import trim_heap, trim_heap_every
from livemosaic.core.admission import Permit
from livemosaic.core.budget import pixel_bytes
from livemosaic.core.cancel import CancelToken, deadline_error
from livemosaic.core.models import ServiceSnapshot, SpatialRef
from livemosaic.errors import (
    InvalidParameter,
    LiveMosaicError,
    NotSupported,
    RequestCancelled,
    ServiceNotFound,
    ServiceStopped,
)
from livemosaic.rest.auth import check_service_access, hide_missing_service
from livemosaic.settings import MIB

if TYPE_CHECKING:
    from livemosaic.context import AppContext

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
        raise deadline_error(timeout) from None


POLL_SECONDS = 0.2  # how often a waiting request looks at its deadline and its client


def _work(
    fn: Callable[..., T],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    trim: bool,
    trim_every: float,
) -> T:
    """Run admitted work on a worker thread; hand freed heap back after large work, and
    after other work at most every ``trim_every`` seconds."""
    try:
        return fn(*args, **kwargs)
    except LiveMosaicError as exc:
        # drop the traceback: its frames would keep the request's arrays alive
        raise exc.with_traceback(None) from None
    finally:
        if trim:
            trim_heap()
        else:
            trim_heap_every(trim_every)


async def run_admitted(
    request: Request,
    weight: int,
    fn: Callable[..., T],
    *args: Any,
    keep: Callable[[T], int] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, cancel=token, **kwargs)`` on the read pool once the admission gate has
    room for ``weight`` estimated bytes (ServerBusy otherwise); RequestCancelled (504) when the
    deadline passes or the client goes away, with the work told to stop.

    ``keep(result)``: bytes of the result that stay in memory until the answer is sent (an
    encoded image); they stay counted until the request ends (:func:`release_held`)."""
    ctx = app_context(request)
    permit = await ctx.gate.acquire(weight)
    settings = ctx.settings
    timeout = settings.request_timeout_seconds
    token = CancelToken.after(timeout)
    # the fixed allowance is in every estimate: only requests large in themselves trim
    trim = settings.trim_after_mb > 0 and pixel_bytes(weight) >= settings.trim_after_mb * MIB
    call = functools.partial(
        _work, fn, args, {**kwargs, "cancel": token}, trim, settings.trim_every_seconds
    )
    try:
        future = asyncio.get_running_loop().run_in_executor(ctx.executor, call)
    except BaseException:
        permit.release()
        raise
    abandoned = False

    def finished(done: asyncio.Future[T]) -> None:
        if abandoned:
            permit.release()  # only now is the abandoned work's memory really gone
        if not done.cancelled():
            done.exception()  # retrieved: an abandoned failure is not logged as unhandled

    def abandon(reason: str) -> None:
        nonlocal abandoned
        abandoned = True
        token.cancel(reason)
        if future.done():
            permit.release()

    future.add_done_callback(finished)
    try:
        while True:
            done, _pending = await asyncio.wait({future}, timeout=POLL_SECONDS)
            if done:
                try:
                    result = future.result()
                except BaseException:
                    permit.release()
                    raise
                if keep is None:
                    permit.release()
                else:
                    permit.keep(keep(result))
                    request.state.held_permits = [*_held(request), permit]
                return result
            if token.expired:
                abandon("deadline")
                raise deadline_error(timeout)
            if await request.is_disconnected():
                abandon("the client disconnected")
                raise RequestCancelled("The client disconnected; its work was stopped.")
    except asyncio.CancelledError:
        abandon("the request was cancelled")
        raise


def _held(request: Request) -> list[Permit]:
    held: list[Permit] = getattr(request.state, "held_permits", [])
    return held


def release_held(state: Mapping[str, Any]) -> None:
    """Give back the bytes a finished request kept for its answer (called once the answer has
    been sent or has failed; ``state`` is the ASGI scope's state)."""
    for permit in state.get("held_permits", ()):
        permit.release()


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
    "release_held",
    "run_admitted",
    "run_blocking",
    "service_crs",
    "service_snapshot",
]
