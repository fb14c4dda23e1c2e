"""The notification WebSocket, ``{root}/livemosaic/ws`` (spec 10; docs/notifications.md).

Outside ``{root}/rest`` on purpose, so no ArcGIS client mistakes it for a service. A client
connects (token in the ``token`` query parameter or the ``X-Esri-Authorization`` header),
receives ``hello``, sends ``{"op": "subscribe", "services": [...]}`` and then gets a
``serviceRefreshed`` message after every refresh of those services, plus heartbeats. Every
problem with a client message is answered with an ``error`` event; the connection stays open.

Each connection runs two tasks: one reads client messages, one sends what the
:class:`~livemosaic.core.notify.NotificationHub` queued for it. The hub is taken from
``app.state.notify_hub`` (the lifespan puts it there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from livemosaic.core.notify import NotificationHub, Subscriber, now_ms
from livemosaic.errors import LimitExceeded

log = logging.getLogger("livemosaic.rest")
router = APIRouter()
_GONE = (WebSocketDisconnect, OSError, RuntimeError)  # the peer went away mid-send

WS_PATH = "/livemosaic/ws"
MAX_CLIENT_MESSAGE = 64 * 1024  # characters of one client message
CLOSE_TIMEOUT = 2.0
OPS = ("subscribe", "unsubscribe", "ping")
PROTOCOL_HELP = (
    'send {"op": "subscribe", "services": ["Folder/Name.ImageServer"]}, '
    '{"op": "unsubscribe", "services": [...]} or {"op": "ping"}'
)


def handshake_token(websocket: WebSocket) -> str | None:
    """The token of the handshake: ``?token=`` first, then ``X-Esri-Authorization: Bearer …``."""
    token = websocket.query_params.get("token")
    if token and token.strip():
        return token.strip()
    header = websocket.headers.get("x-esri-authorization", "").strip()
    if header.lower().startswith("bearer "):
        header = header[7:].strip()
    return header or None


def origin_allowed(websocket: WebSocket) -> bool:
    """True when the Origin header (if any) is one of the configured CORS origins."""
    origin = websocket.headers.get("origin")
    settings = getattr(websocket.app.state, "settings", None)
    origins = list(getattr(settings, "cors_origins", ["*"]))
    if not origin or "*" in origins:
        return True
    allowed = {o.rstrip("/").lower() for o in origins}
    host = websocket.headers.get("host", "")
    same = origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()
    return same or origin.rstrip("/").lower() in allowed


def _error(message: str, code: int = 400) -> dict[str, Any]:
    return {"event": "error", "code": code, "message": message}


def handle_message(hub: NotificationHub, sub: Subscriber, text: str) -> list[dict[str, Any]]:
    """The replies to one client message (never raises for bad input)."""
    if len(text) > MAX_CLIENT_MESSAGE:
        return [_error(f"The message is longer than {MAX_CLIENT_MESSAGE} characters.")]
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return [_error(f"The message is not JSON; {PROTOCOL_HELP}.")]
    if not isinstance(data, dict):
        return [_error(f"The message must be a JSON object; {PROTOCOL_HELP}.")]
    op = data.get("op")
    if not isinstance(op, str) or op.lower() not in OPS:
        return [_error(f"Unknown op {str(op)[:40]!r}; {PROTOCOL_HELP}.")]
    op = op.lower()
    if op == "ping":
        return [{"event": "pong", "time": now_ms()}]
    services = data.get("services")
    if isinstance(services, str):
        services = [services]
    if not isinstance(services, list) or not services:
        return [_error(f"'{op}' needs 'services': a non-empty list of service names.")]
    if op == "subscribe":
        result = hub.subscribe(sub, services)
        replies: list[dict[str, Any]] = []
        if result.services or not result.errors:
            replies.append(
                {"event": "subscribed", "services": result.services, "versions": result.versions}
            )
    else:
        result = hub.unsubscribe(sub, services)
        replies = [{"event": "unsubscribed", "services": result.services}]
    return replies + result.errors


async def _send_loop(websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        text = await sub.next()
        await websocket.send_text(text)


async def _receive_loop(websocket: WebSocket, hub: NotificationHub, sub: Subscriber) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                hub.send(sub, _error("Binary messages are not understood; send JSON text."))
                continue
        for reply in handle_message(hub, sub, text):
            hub.send(sub, reply)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if (
        websocket.application_state == WebSocketState.CONNECTED
        and websocket.client_state == WebSocketState.CONNECTED
    ):
        with contextlib.suppress(Exception):  # the peer may be gone or not reading
            await asyncio.wait_for(websocket.close(code, reason[:120]), CLOSE_TIMEOUT)


@router.websocket(WS_PATH)
async def notifications(websocket: WebSocket) -> None:
    """``{root}/livemosaic/ws``: subscribe to services, receive refresh messages and heartbeats."""
    hub: NotificationHub | None = getattr(websocket.app.state, "notify_hub", None)
    if hub is None or not origin_allowed(websocket):
        await websocket.close(1008 if hub is not None else 1011)
        return
    await websocket.accept()
    try:
        sub = hub.connect(handshake_token(websocket))
    except LimitExceeded as exc:
        await websocket.send_text(json.dumps(_error(exc.reason, 503)))
        await _close(websocket, 1013, "too many clients")
        return
    hub.send(
        sub,
        {
            "event": "hello",
            "heartbeatSeconds": hub.heartbeat_seconds,
            "queueSize": hub.queue_size,
            "time": now_ms(),
        },
    )
    tasks = [
        asyncio.create_task(_send_loop(websocket, sub)),
        asyncio.create_task(_receive_loop(websocket, hub, sub)),
        asyncio.create_task(sub.wait_closed()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        hub.disconnect(sub)
    for outcome in outcomes:
        if isinstance(outcome, Exception) and not isinstance(outcome, _GONE):
            log.debug("notification connection %d ended: %r", sub.id, outcome)
    await _close(websocket, sub.close_code, sub.close_reason)


__all__ = ["WS_PATH", "handle_message", "handshake_token", "origin_allowed", "router"]
