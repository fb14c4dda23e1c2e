"""The one place where failures become ArcGIS error responses.

Every error leaves the REST layer as the envelope ``{"error": {"code", "message",
"details"}}`` (spec 3.1). The HTTP status is 200 (ArcGIS behaviour) unless
``settings.strict_http_status`` asks for the matching status; a request with another method
than GET/POST/OPTIONS always gets 405, and a busy answer (code 503) always gets HTTP 503 with
``Retry-After``, so that clients, proxies and load balancers back off instead of reading a
200. The envelope is sent as JSON, pretty JSON, JSONP or an
HTML page depending on ``f`` and ``callback``. Unexpected exceptions are logged with their
stack trace and answered with code 500 and a short reason, never the trace.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

from livemosaic.errors import UNABLE, LiveMosaicError, NotFound, ServerBusy, ServiceNotFound

if TYPE_CHECKING:
    from livemosaic.settings import Settings

log = logging.getLogger("livemosaic.rest")

JSONP_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*|\[\d+\])*$")
JSON_TYPE = "application/json; charset=utf-8"
JSONP_TYPE = "application/javascript; charset=utf-8"


class MethodNotAllowed(LiveMosaicError):
    """The HTTP method is not GET, POST or OPTIONS."""

    code = 405
    default_message = "Method not allowed."


class UnexpectedError(LiveMosaicError):
    """Stands in for an exception the server did not anticipate (details stay generic)."""

    code = 500


def envelope(exc: LiveMosaicError) -> dict[str, Any]:
    """The ArcGIS error envelope of an error."""
    return {"error": {"code": exc.code, "message": exc.message, "details": list(exc.details)}}


def admin_envelope(exc: LiveMosaicError) -> dict[str, Any]:
    """The admin API error shape (spec 3.3): ``{"status": "error", "messages", "code"}``."""
    texts = [] if exc.message == UNABLE and exc.details else [exc.message]
    messages: list[str] = []
    for text in [*texts, *exc.details]:
        if text and text not in messages:
            messages.append(text)
    return {"status": "error", "messages": messages, "code": exc.code}


def as_livemosaic_error(exc: BaseException, path: str = "") -> LiveMosaicError:
    """Translate any exception into the LiveMosaicError that describes it to a client."""
    if isinstance(exc, LiveMosaicError):
        return exc
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            if "/rest/services/" in path.lower():
                return ServiceNotFound(f"No service or resource at '{path}'.")
            return NotFound(f"No resource at '{path}'.", message="Resource not found.")
        if exc.status_code == 405:
            return MethodNotAllowed("Use GET or POST.")
        err = LiveMosaicError(str(exc.detail), message=UNABLE)
        err.code = exc.status_code if 400 <= exc.status_code <= 599 else 500
        return err
    log.error("unexpected error while serving %s", path, exc_info=exc)
    return UnexpectedError(
        "The server failed while handling the request.",
        next_step="Retry; if the problem persists, the server log has the cause.",
    )


def _format_of(params: Mapping[str, str]) -> tuple[str, str | None]:
    f = (params.get("f") or "").strip().lower()
    callback = (params.get("callback") or "").strip() or None
    return f, callback


def _status(exc: LiveMosaicError, settings: Settings | None) -> int:
    if exc.code in (405, 503):  # 503 busy: clients and proxies must see it to back off
        return exc.code
    if settings is not None and settings.strict_http_status and 400 <= exc.code <= 599:
        return exc.code
    return 200


def render_error(
    exc: LiveMosaicError,
    params: Mapping[str, str],
    settings: Settings | None,
    *,
    admin: bool = False,
) -> Response:
    """The response carrying an error's envelope, formatted after ``f`` and ``callback``.

    ``admin`` selects the admin API shape for JSON (spec 3.3).
    """
    status = _status(exc, settings)
    body = envelope(exc)
    f, callback = _format_of(params)
    headers = {"Cache-Control": "no-cache"}
    if exc.code == 405:
        headers["Allow"] = "GET, POST, OPTIONS"
    if isinstance(exc, ServerBusy):
        headers["Retry-After"] = str(exc.retry_after)
    if f in ("", "html") and exc.code != 405:
        from livemosaic.rest.html import render_error_page

        return HTMLResponse(render_error_page(body), status_code=status, headers=headers)
    pretty = f == "pjson"
    data = admin_envelope(exc) if admin else body
    text = json.dumps(data, indent=2 if pretty else None, separators=None if pretty else (",", ":"))
    if callback and f in ("json", "pjson") and JSONP_CALLBACK.match(callback):
        return Response(
            f"{callback}({text});", status_code=status, media_type=JSONP_TYPE, headers=headers
        )
    return Response(text, status_code=status, media_type=JSON_TYPE, headers=headers)


def _settings_of(scope: Scope) -> Settings | None:
    """The settings the application was created with (they decide the HTTP status policy)."""
    state = getattr(scope.get("app"), "state", None)
    settings = getattr(state, "settings", None)
    if settings is None:
        settings = getattr(getattr(state, "ctx", None), "settings", None)
    return settings


def params_of_scope(scope: Scope) -> dict[str, str]:
    """Parameters already parsed for this request, else the query string (case-folded)."""
    state = scope.get("state") or {}
    parsed = state.get("params")
    if parsed is not None:
        return {"f": parsed.get("f") or "", "callback": parsed.get("callback") or ""}
    query = scope.get("query_string", b"").decode("latin-1")
    out: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        out[key.lower()] = value
    return out


def is_admin_path(path: str, settings: Settings | None) -> bool:
    """True for paths under ``/{root}/admin`` (they use the admin error shape)."""
    root = settings.root.lower() if settings is not None else "arcgis"
    lowered = path.lower().rstrip("/")
    return lowered == f"/{root}/admin" or lowered.startswith(f"/{root}/admin/")


def error_response_for_scope(scope: Scope, exc: BaseException) -> Response:
    """The envelope response of an error raised outside a route (middleware, body limits)."""
    path = scope.get("path", "")
    err = as_livemosaic_error(exc, path)
    settings = _settings_of(scope)
    return render_error(err, params_of_scope(scope), settings, admin=is_admin_path(path, settings))


async def handle_exception(request: Request, exc: Exception) -> Response:
    """Exception handler installed for LiveMosaicError and Starlette HTTP errors."""
    return error_response_for_scope(request.scope, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Route every LiveMosaicError and routing error (404/405) through the envelope."""
    app.add_exception_handler(LiveMosaicError, handle_exception)
    app.add_exception_handler(StarletteHTTPException, handle_exception)


__all__ = [
    "JSONP_CALLBACK",
    "admin_envelope",
    "is_admin_path",
    "MethodNotAllowed",
    "UnexpectedError",
    "as_livemosaic_error",
    "envelope",
    "error_response_for_scope",
    "install_error_handlers",
    "params_of_scope",
    "render_error",
]
