"""The notification WebSocket, ``{root}/livemosaic/ws`` (spec 10; docs/notifications.md).

Outside ``{root}/rest`` on purpose, so no ArcGIS client mistakes it for a service. A client
connects (token where HTTP requests carry it: ``X-Esri-Authorization`` or ``Authorization:
Bearer`` header, ``token`` query parameter, ``agstoken`` cookie),
receives ``hello``, sends ``{"op": "subscribe", "services": [...]}`` and then gets a
``serviceRefreshed`` message after every refresh of those services, plus heartbeats. Every
problem with a client message is answered with an ``error`` event; the connection stays open.

The token is checked by :func:`livemosaic.rest.auth.authenticate`, as for HTTP, against the
handshake's address and its Referer or Origin: a token that is not good is refused with an
``error`` event (498) and close code 4498. The hub checks the token again on a timer and
before each message of a secured service, and closes the connection (4498) once the token
expired or was revoked.

Each connection runs two tasks: one reads client messages, one sends what the
:class:`~livemosaic.rest.notify_hub.NotificationHub` queued for it. The hub is taken from
``app.state.notify_hub`` (the lifespan puts it there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from livemosaic.errors import LimitExceeded
from livemosaic.rest.auth import caller_of, scope_token
from livemosaic.rest.cors import WILDCARD, CorsPolicy
from livemosaic.rest.notify_hub import (
    CLOSE_TOKEN_INVALID,
    Credentials,
    NotificationHub,
    Subscriber,
    now_ms,
)

if TYPE_CHECKING:
    from livemosaic.context import AppContext

log = logging.getLogger("livemosaic.rest")
router = APIRouter()
_GONE = (WebSocketDisconnect, OSError, RuntimeError)  # the peer went away mid-send

WS_PATH = "/livemosaic/ws"
MAX_CLIENT_MESSAGE = 64 * 1024  # characters of one client message
CLOSE_TIMEOUT = 2.0
SIGN_IN = "Sign in again with generateToken and reconnect with the new token."
OPS = ("subscribe", "unsubscribe", "ping")
PROTOCOL_HELP = (
    'send {"op": "subscribe", "services": ["Folder/Name.ImageServer"]}, '
    '{"op": "unsubscribe", "services": [...]} or {"op": "ping"}'
)


def handshake_token(websocket: WebSocket) -> str | None:
    """The token of the handshake, found where HTTP requests look for it (rest.auth).

    The ``agstoken`` cookie counts only when the page is this server's own or an origin
    ``cors_origins`` lists by name: a browser sends cookies with any page's handshake, and
    WebSocket has no CORS to keep foreign pages from reading what such a token may see.
    """
    return scope_token(websocket.scope, cookies=_origin_is(websocket, credentialed=True))


def _origin_is(websocket: WebSocket, *, credentialed: bool) -> bool:
    origin = websocket.headers.get("origin")
    if not origin:
        return True  # not a browser page
    settings = getattr(websocket.app.state, "settings", None)
    policy = CorsPolicy.of(list(getattr(settings, "cors_origins", [WILDCARD])))
    host = websocket.headers.get("host", "").lower()
    if origin.split("://", 1)[-1].rstrip("/").lower() == host:
        return True  # this server's own page (the live viewer)
    return policy.credentialed(origin) if credentialed else policy.allows(origin)


def origin_allowed(websocket: WebSocket) -> bool:
    """True when the handshake has no Origin, comes from this server, or from an origin the
    CORS policy (``cors_origins``) lets read responses."""
    return _origin_is(websocket, credentialed=False)


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
    ctx: AppContext = websocket.app.state.ctx
    credentials = Credentials(handshake_token(websocket), caller_of(websocket.scope, ctx.settings))
    problem = hub.token_problem(credentials)
    if problem is not None:  # the same refusal as HTTP's 498, then the connection closes
        await websocket.send_text(json.dumps(_error(f"{problem} {SIGN_IN}", 498)))
        await _close(websocket, CLOSE_TOKEN_INVALID, problem)
        return
    try:
        sub = hub.connect(credentials)
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
