"""Response formats: json, pjson, JSONP, html and image bytes (spec 1.5, 1.7).

JSON never carries NaN or Infinity (they become null) and numpy values become plain numbers.
Service metadata gets ``Cache-Control: no-cache`` and an ``ETag`` that changes with every
refresh; ``If-None-Match`` is answered with 304.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemosaic.core.models import ServiceSnapshot
from livemosaic.errors import InvalidParameter
from livemosaic.rest.errors import JSON_TYPE, JSONP_CALLBACK, JSONP_TYPE
from livemosaic.rest.params import Params

SERVICE_VERSION_HEADER = "X-LiveMosaic-Service-Version"


def sanitize(value: Any) -> Any:
    """A JSON-safe copy: NaN/Infinity → None, numpy scalars/arrays → Python, tuples → lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return sanitize(value.item())
    if isinstance(value, np.ndarray):
        return sanitize(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize(v) for v in value]
    return str(value)


def dumps(data: Any, *, pretty: bool = False) -> str:
    """JSON text of ``data`` after :func:`sanitize` (strict: no NaN can slip through)."""
    clean = sanitize(data)
    if pretty:
        return json.dumps(clean, indent=2, allow_nan=False, ensure_ascii=False)
    return json.dumps(clean, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _etag(text: str, snapshot: ServiceSnapshot | None) -> str:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
    version = snapshot.version if snapshot is not None else 0
    return f'"v{version}-{digest}"'


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or f"W/{etag}" in tags


def json_response(
    request: Request,
    params: Params,
    data: Any,
    *,
    snapshot: ServiceSnapshot | None = None,
    metadata: bool = False,
) -> Response:
    """``data`` as json (f=json), pretty json (f=pjson) or JSONP (``callback``)."""
    f = params.f or "json"
    pretty = f == "pjson"
    text = dumps(data, pretty=pretty)
    headers: dict[str, str] = {}
    if snapshot is not None:
        headers[SERVICE_VERSION_HEADER] = str(snapshot.version)
    if metadata:
        etag = _etag(text, snapshot)
        headers["ETag"] = etag
        headers["Cache-Control"] = "no-cache"
        if _etag_matches(request, etag):
            return Response(status_code=304, headers=headers)
    callback = params.get("callback")
    if callback:
        if not JSONP_CALLBACK.match(callback):
            raise InvalidParameter(
                "callback",
                "the value is not a valid JavaScript function name.",
                accepted="a dotted identifier such as window._cb.c3",
            )
        return Response(f"{callback}({text});", media_type=JSONP_TYPE, headers=headers)
    return Response(text, media_type=JSON_TYPE, headers=headers)


def resource_response(
    request: Request,
    params: Params,
    data: Any,
    html: Callable[[], str],
    *,
    snapshot: ServiceSnapshot | None = None,
    metadata: bool = False,
) -> Response:
    """A resource in the format ``f`` asks for: json/pjson (JSONP) or the HTML page."""
    f = params.f
    if f in (None, "html"):
        headers = {SERVICE_VERSION_HEADER: str(snapshot.version)} if snapshot else {}
        return HTMLResponse(html(), headers=headers)
    if f in ("json", "pjson"):
        return json_response(request, params, data, snapshot=snapshot, metadata=metadata)
    raise InvalidParameter(
        "f", f"'{f}' is not a format of this resource.", accepted="json, pjson or html"
    )


def image_response(
    content: bytes, content_type: str, snapshot: ServiceSnapshot, *, max_age: int = 60
) -> Response:
    """Image bytes with a short private cache lifetime and a refresh-aware ETag (6.1.4)."""
    digest = hashlib.sha1(content).hexdigest()[:16]
    headers = {
        "Cache-Control": f"private, max-age={max_age}",
        "ETag": f'"v{snapshot.version}-{digest}"',
        SERVICE_VERSION_HEADER: str(snapshot.version),
    }
    return Response(content, media_type=content_type, headers=headers)


__all__ = [
    "SERVICE_VERSION_HEADER",
    "dumps",
    "image_response",
    "json_response",
    "resource_response",
    "sanitize",
]
