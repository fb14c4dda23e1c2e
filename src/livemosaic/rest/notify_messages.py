"""The messages of the change notifications (docs/notifications.md) and service names.

Pure functions: :func:`refresh_message` builds the ``serviceRefreshed`` message of a snapshot
swap, :func:`parse_service_name` reads ``Folder/Name.ImageServer``, :func:`error_message`
and :func:`denied_message` build ``error`` events. Used by :mod:`livemosaic.rest.notify_hub`.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from livemosaic.core.models import ServiceSnapshot
from livemosaic.core.refresh import changed_fields
from livemosaic.errors import InvalidParameter
from livemosaic.rest.refresh_wire import wire_names

SERVICE_SUFFIX = ".imageserver"
CODE_BAD_NAME = 400
CODE_NOT_FOUND = 404
CODE_TOKEN_REQUIRED = 499
CODE_FORBIDDEN = 403


def now_ms() -> int:
    """Current wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


def wire_name(snapshot: ServiceSnapshot) -> str:
    """The name clients use for a service: ``Folder/Name.ImageServer``."""
    return f"{snapshot.qualified_name}.ImageServer"


def parse_service_name(text: object) -> tuple[str, str]:
    """``Folder/Name.ImageServer`` (suffix optional) → ``(folder, name)``; InvalidParameter otherwise."""
    accepted = "Folder/Name.ImageServer or Name.ImageServer"
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter(
            "services", "each service must be a non-empty string.", accepted=accepted
        )
    value = text.strip().strip("/")
    lowered = value.lower()
    if lowered.endswith(SERVICE_SUFFIX):
        value = value[: -len(SERVICE_SUFFIX)]
    elif "." in value.rsplit("/", 1)[-1]:
        kind = value.rsplit(".", 1)[-1]
        raise InvalidParameter(
            "services",
            f"'{text[:80]}' is a {kind}; only image services send notifications.",
            accepted=accepted,
        )
    parts = [p for p in value.split("/") if p]
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise InvalidParameter("services", f"'{text[:80]}' is not a service name.", accepted=accepted)


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def refresh_message(
    old: ServiceSnapshot | None, new: ServiceSnapshot, time_ms: int | None = None
) -> dict[str, Any]:
    """The ``serviceRefreshed`` message for a swap from ``old`` to ``new``.

    ``changed`` names the service-info fields that differ (as Refresh Service reports them),
    plus ``serviceDefinition`` after an admin edit. ``itemsAdded``/``itemsRemoved`` are the
    net change of the item count.
    """
    summary = new.summary
    changed = wire_names(changed_fields(old, new))
    if old is not None and old.definition != new.definition:
        changed.append("serviceDefinition")
    ext = summary.extent
    extent = None
    if ext is not None:
        extent = {
            "xmin": ext.xmin,
            "ymin": ext.ymin,
            "xmax": ext.xmax,
            "ymax": ext.ymax,
            "spatialReference": new.spatial_reference.to_json(),
        }
    before = old.summary.item_count if old is not None else 0
    delta = summary.item_count - before
    message: dict[str, Any] = _finite(
        {
            "event": "serviceRefreshed",
            "service": wire_name(new),
            "generation": new.version,
            "version": new.version,
            "previousGeneration": old.version if old is not None else None,
            "changed": changed,
            "extent": extent,
            "timeExtent": list(summary.time_extent) if summary.time_extent else None,
            "dimensions": {
                v.name: {d.name: list(d.values) for d in v.dimensions} for v in summary.variables
            },
            "itemCount": summary.item_count,
            "itemsAdded": max(0, delta),
            "itemsRemoved": max(0, -delta),
            "time": now_ms() if time_ms is None else time_ms,
        }
    )
    return message


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON text of a message."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False, default=str)


def error_message(code: int, message: str, service: object) -> dict[str, Any]:
    """An ``error`` event about one service name (as the client sent it)."""
    return {"event": "error", "code": code, "message": message, "service": _label(service)}


def denied_message(token: str | None, name: str, service: object) -> dict[str, Any]:
    """The ``error`` event refusing a service: 499 without a token, 403 with one."""
    if token is None:
        return error_message(
            CODE_TOKEN_REQUIRED,
            f"Token required: '{name}' is secured; connect with ?token=<token>.",
            service,
        )
    return error_message(
        CODE_FORBIDDEN, f"The token is not valid or not allowed to access '{name}'.", service
    )


def _label(service: object) -> object:
    return service[:200] if isinstance(service, str) else service


__all__ = [
    "CODE_BAD_NAME",
    "CODE_FORBIDDEN",
    "CODE_NOT_FOUND",
    "CODE_TOKEN_REQUIRED",
    "denied_message",
    "dumps",
    "error_message",
    "now_ms",
    "parse_service_name",
    "refresh_message",
    "wire_name",
]
