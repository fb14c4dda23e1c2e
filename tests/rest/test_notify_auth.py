"""The notification WebSocket checks tokens as HTTP does, and keeps checking them.

A real server (uvicorn with WebSockets on 127.0.0.1) over the security site of
``tests/rest/secure.py``, the hub ``create_app`` wires (``notification_hub``), real clients.
The handshake applies the IP and referer binding of :func:`livemosaic.rest.auth.authenticate`
(Referer, else Origin); a connection whose token expires or is revoked is closed with code
4498, by the timer and before any message of a secured service is delivered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from livemosaic.app import AppContext, notification_hub
from livemosaic.core.security import TokenClaims
from livemosaic.rest.notify_hub import CLOSE_TOKEN_INVALID
from tests.rest.secure import build_site, sign_in
from tests.rest.ws_server import WsServer, serve

SECURED = "Private/sec.ImageServer"
CHECK_SECONDS = 0.25


@pytest.fixture(scope="module")
def ctx(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    work = tmp_path_factory.mktemp("notify-auth")
    yield build_site(work, shared_data, notify_token_check_seconds=CHECK_SECONDS)


@pytest.fixture(scope="module")
def server(ctx: AppContext) -> Iterator[WsServer]:
    with serve(ctx, notification_hub(ctx)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: WsServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, trust_env=False, timeout=30) as client:
        yield client


def open_ws(server: WsServer, token: str | None, **headers: str) -> ClientConnection:
    query = f"?token={token}" if token else ""
    return connect(
        server.ws_url + query, proxy=None, open_timeout=10, additional_headers=headers or None
    )


def first(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=10)))


def refused(ws: ClientConnection) -> str:
    """The close reason of a handshake refused for its token (error 498, then 4498)."""
    message = first(ws)
    assert message["event"] == "error" and message["code"] == 498, message
    closed_by(ws, timeout=10)
    return str(ws.close_reason)


def closed_by(ws: ClientConnection, timeout: float) -> list[dict[str, Any]]:
    """Read until the server closes the connection with 4498; the messages read before."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed):  # noqa: PT012
        while time.monotonic() < deadline:
            seen.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    assert ws.close_code == CLOSE_TOKEN_INVALID, (ws.close_code, ws.close_reason, seen)
    return seen


def subscribed(ws: ClientConnection, service: str = SECURED) -> None:
    assert first(ws)["event"] == "hello"
    ws.send(json.dumps({"op": "subscribe", "services": [service]}))
    while True:
        answer = first(ws)
        if answer["event"] != "heartbeat":
            assert answer["event"] == "subscribed", answer
            return


def test_ip_binding_applies_to_the_handshake(server: WsServer, http: httpx.Client) -> None:
    with open_ws(server, sign_in(http, "viewer", client="requestip")) as ws:
        subscribed(ws)
    with open_ws(server, sign_in(http, "viewer", client="ip", ip="10.9.8.7")) as ws:
        assert "another client address" in refused(ws)


def test_referer_binding_applies_to_the_handshake(server: WsServer, http: httpx.Client) -> None:
    token = sign_in(http, "viewer", client="referer", referer="https://app.example.org/map")
    with open_ws(server, token, Origin="https://app.example.org") as ws:
        subscribed(ws)  # a browser sends only Origin: the origins are compared
    with open_ws(server, token, Referer="https://app.example.org/map/index.html") as ws:
        subscribed(ws)
    for headers in (
        {"Origin": "https://app.example.org.evil.net"},
        {"Origin": "http://app.example.org"},
        {"Referer": "https://app.example.org/mapping"},
        {},  # strict: no Referer or Origin at all
    ):
        with open_ws(server, token, **headers) as ws:
            assert "another referer" in refused(ws), headers


def test_bad_tokens_are_refused_at_the_handshake(server: WsServer, ctx: AppContext) -> None:
    for token in ("not-a-token", "lm1.e30.AAAA"):
        with open_ws(server, token) as ws:
            assert "not valid" in refused(ws)


def test_connection_closes_when_its_token_expires(server: WsServer, ctx: AppContext) -> None:
    user = ctx.users.get_user("viewer")
    expires = int(time.time() * 1000) + 1500
    claims = TokenClaims(user.username, user.role, expires, "ip", "127.0.0.1", user.token_epoch)
    with open_ws(server, ctx.signer.issue(claims)) as ws:
        subscribed(ws)
        closed_by(ws, timeout=10)
        assert "expired" in str(ws.close_reason)
        assert time.time() * 1000 >= expires


@pytest.mark.parametrize("change", ["password", "removed", "disabled"])
def test_connection_closes_when_its_token_is_revoked(
    server: WsServer, http: httpx.Client, ctx: AppContext, change: str
) -> None:
    user = ctx.users.get_user("viewer")
    with open_ws(server, sign_in(http, "viewer")) as ws:
        subscribed(ws)
        if change == "password":  # what `livemosaic user passwd` does: a new token epoch
            ctx.users.save_user(replace(user, token_epoch=user.token_epoch + 1))
        elif change == "removed":
            ctx.users.remove_user("viewer")
        else:
            ctx.users.save_user(replace(user, disabled=True))
        try:
            closed_by(ws, timeout=10)
        finally:
            if change == "removed":
                ctx.users.add_user(user)
            else:
                ctx.users.save_user(user)
    assert ws.close_reason


def test_no_secured_message_after_revocation_even_between_checks(
    ctx: AppContext, http: httpx.Client
) -> None:
    hub = notification_hub(ctx)
    hub.token_check_seconds = 3600.0  # the timer never fires: only the delivery check
    with serve(ctx, hub) as srv:
        user = ctx.users.get_user("pub1")
        with open_ws(srv, sign_in(http, "pub1")) as ws:
            subscribed(ws, "Private/granted.ImageServer")
            ctx.users.save_user(replace(user, token_epoch=user.token_epoch + 1))
            try:
                ctx.publisher.republish("Private", "granted")
                seen = closed_by(ws, timeout=10)
            finally:
                ctx.users.save_user(user)
        assert not [m for m in seen if m["event"] == "serviceRefreshed"], seen
        assert "revoked" in str(ws.close_reason)
        assert hub.stats.expired == 1


def test_cookie_counts_only_for_own_or_listed_origins(server: WsServer, http: httpx.Client) -> None:
    cookie = {"Cookie": f"agstoken={sign_in(http, 'viewer')}"}
    host = server.base.removeprefix("http://")
    with open_ws(server, None, **cookie) as ws:
        subscribed(ws)  # no Origin: not a browser page
    with open_ws(server, None, Origin=f"http://{host}", **cookie) as ws:
        subscribed(ws)  # this server's own page
    with open_ws(server, None, Origin="https://elsewhere.example.net", **cookie) as ws:
        assert first(ws)["event"] == "hello"  # the default cors_origins '*' lets it connect,
        ws.send(json.dumps({"op": "subscribe", "services": [SECURED]}))
        answer = first(ws)
        while answer["event"] == "heartbeat":
            answer = first(ws)
        assert answer["event"] == "error" and answer["code"] == 499, answer  # but anonymously
