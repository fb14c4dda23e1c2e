"""The JSON text of events that travel between processes (NOTIFY payloads).

``{"type": "SnapshotInstalled", "origin": "<process id>", "folder": …, "name": …, …}``.
Only events whose class says ``crosses_processes`` are encoded; unknown types or malformed
payloads decode to None (a newer process may send events this one does not know).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from livemosaic.core.events import Event, ItemsChanged, ServiceRemoved, SnapshotInstalled

TRAVELLING: dict[str, type[SnapshotInstalled | ServiceRemoved | ItemsChanged]] = {
    cls.__name__: cls for cls in (SnapshotInstalled, ServiceRemoved, ItemsChanged)
}
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
GAP = "gap"  # the type of a notice that events of its origin were lost


@dataclasses.dataclass(frozen=True, slots=True)
class GapNotice:
    """Another process could not send some events: its listeners should catch up."""


def gap_payload(origin: str) -> str:
    """The payload of a gap notice sent by process ``origin``."""
    return json.dumps({"type": GAP, "origin": origin}, separators=(",", ":"))


def encode(event: Event, origin: str) -> str | None:
    """The payload of ``event`` sent by process ``origin`` (None: the event stays local)."""
    if not event.crosses_processes:
        return None
    data: dict[str, Any] = {"type": type(event).__name__, "origin": origin}
    data.update(dataclasses.asdict(event))
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_PAYLOAD:
        raise ValueError(f"{type(event).__name__} payload is {len(text)} characters long.")
    return text


def decode(payload: str) -> tuple[str, Event | GapNotice] | None:
    """``(origin, event)`` of a payload; None when it is not an event this process knows."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    origin = data.get("origin")
    if not isinstance(origin, str):
        return None
    if data.get("type") == GAP:
        return origin, GapNotice()
    cls = TRAVELLING.get(str(data.get("type")))
    if cls is None:
        return None
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = data.get(f.name)
        wanted = int if f.type == "int" else str
        if not isinstance(value, wanted) or isinstance(value, bool):
            return None
        values[f.name] = value
    return origin, cls(**values)


__all__ = ["GAP", "MAX_PAYLOAD", "TRAVELLING", "GapNotice", "decode", "encode", "gap_payload"]
