"""ASGI middleware: CORS and methods, body size, paths, callers, service version, crashes.

Order from the outside in (see :func:`install_middleware`)::

    CorsMiddleware            CORS headers (rest.cors), OPTIONS preflight, 405 otherwise
    BodyLimitMiddleware       bodies above max_request_body_bytes → 400 envelope
    PathNormalizeMiddleware   case-insensitive fixed segments, trailing slash ignored
    AuthMiddleware            parameters parsed once, token found and verified (rest.auth)
    ServiceVersionMiddleware  X-LiveMosaic-Service-Version on every service response
    CrashMiddleware           unexpected exceptions → 500 envelope (logged, never leaked)

A second CrashMiddleware outside all of them answers failures of the middleware itself with the
same envelope (without CORS headers: the CORS layer is what failed, or lies inside it).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livemosaic.errors import LimitExceeded
from livemosaic.rest.auth import AuthMiddleware
from livemosaic.rest.context import release_held
from livemosaic.rest.cors import CorsPolicy
from livemosaic.rest.errors import MethodNotAllowed, error_response_for_scope
from livemosaic.rest.formats import SERVICE_VERSION_HEADER

ALLOWED_METHODS = ("GET", "POST", "OPTIONS")
ALLOWED_HEADERS = (
    "Content-Type, X-Esri-Authorization, Authorization, X-Requested-With, X-Esri-Auth-Client-Id"
)
OUTPUT_MARKER = ("rest", "directories", "arcgisoutput")


class CorsMiddleware:
    """CORS on every response (:class:`~livemosaic.rest.cors.CorsPolicy`: ``*`` without
    credentials, listed origins with); OPTIONS preflight; other methods → 405."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.policy = CorsPolicy.of(origins)

    def _cors_headers(self, headers: MutableHeaders, origin: str | None) -> None:
        headers.add_vary_header("Origin")
        for name, value in self.policy.headers(origin).items():
            headers[name] = value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add CORS headers, answer preflights and refuse other methods."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        method = scope["method"].upper()

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._cors_headers(MutableHeaders(scope=message), origin)
            await send(message)

        if method == "OPTIONS":
            await self._preflight(send_with_cors)
            return
        if method not in ALLOWED_METHODS:
            response = error_response_for_scope(
                scope, MethodNotAllowed(f"The method {method} is not supported; use GET or POST.")
            )
            await response(scope, receive, send_with_cors)
            return
        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send) -> None:
        headers = [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", b"3600"),
            (b"allow", b"GET, POST, OPTIONS"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class BodyLimitMiddleware:
    """Refuse request bodies above ``limit`` bytes with a 400 envelope naming the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _error(self) -> LimitExceeded:
        return LimitExceeded(
            f"The request body is larger than the limit of {self.limit} bytes (max_request_body_bytes).",
            next_step="Send a smaller request, or raise LIVEMOSAIC_MAX_REQUEST_BODY_BYTES.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length up front and count streamed bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.limit:
                await error_response_for_scope(scope, self._error())(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise self._error()
            return message

        await self.app(scope, limited_receive, send)


def normalize_path(path: str) -> str:
    """Lower-case every segment (names are looked up case-insensitively) and drop trailing slashes.

    The part after ``rest/directories/arcgisoutput`` keeps its case: it names files.
    """
    if path == "/":
        return path
    segments = path.split("/")
    lowered = [s.lower() for s in segments]
    cut = len(segments)
    for i in range(len(lowered) - 2):
        if tuple(lowered[i : i + 3]) == OUTPUT_MARKER:
            cut = i + 3
            break
    out = "/".join(lowered[:cut] + segments[cut:])
    stripped = out.rstrip("/")
    return stripped or "/"


class PathNormalizeMiddleware:
    """Make routing case-insensitive and ignore trailing slashes (spec 1.4)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite ``scope['path']`` before routing."""
        if scope["type"] == "http":
            original = scope["path"]
            scope.setdefault("state", {})["original_path"] = original.rstrip("/") or "/"
            prefix = scope.get("root_path", "")  # a proxy prefix keeps its spelling
            if prefix and original.startswith(prefix):
                scope["path"] = prefix + normalize_path(original[len(prefix) :] or "/")
            else:
                scope["path"] = normalize_path(original)
        await self.app(scope, receive, send)


class ServiceVersionMiddleware:
    """Send ``X-LiveMosaic-Service-Version`` on every response that used a service snapshot."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the snapshot the route kept on the request state."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                snapshot = state.get("snapshot")
                if snapshot is not None:
                    headers = MutableHeaders(scope=message)
                    if SERVICE_VERSION_HEADER not in headers:
                        headers[SERVICE_VERSION_HEADER] = str(snapshot.version)
            await send(message)

        await self.app(scope, receive, send_with_version)


class CrashMiddleware:
    """Turn an unexpected exception into the 500 envelope (the trace goes to the log only);
    when the request is over, give back the memory budget its answer held."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer 500 if it fails before a response started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            await error_response_for_scope(scope, exc)(scope, receive, send)
        finally:
            release_held(scope.get("state") or {})  # the answer is out: its bytes too


def install_middleware(app: FastAPI, *, cors_origins: Sequence[str], max_body_bytes: int) -> None:
    """Install the middleware stack in the documented order."""
    # add_middleware puts each new middleware outside the previous ones
    app.add_middleware(CrashMiddleware)
    app.add_middleware(ServiceVersionMiddleware)
    app.add_middleware(AuthMiddleware)
    app.add_middleware(PathNormalizeMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=max_body_bytes)
    app.add_middleware(CorsMiddleware, origins=list(cors_origins))
    # the last line of defence: a failure in the middleware above is an envelope too
    app.add_middleware(CrashMiddleware)


__all__ = [
    "BodyLimitMiddleware",
    "CorsMiddleware",
    "CrashMiddleware",
    "PathNormalizeMiddleware",
    "ServiceVersionMiddleware",
    "install_middleware",
    "normalize_path",
]
