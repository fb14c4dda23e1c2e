"""What ``create_app`` wires for live data: the notification hub (sized by the settings, with
token checks for secured services), the WebSocket, viewer and ingest routes, the viewer link
on the service page. A real server (uvicorn on 127.0.0.1) with the security site of
``tests/rest/secure.py`` and real WebSocket clients.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from livemosaic.app import AppContext, create_app, notification_hub
from livemosaic.rest import imageserver, ingest, notify, viewer
from livemosaic.rest.notify_hub import NotificationHub
from livemosaic.rest.routes import ROUTERS
from tests.rest.secure import build_site, sign_in
from tests.rest.ws_server import WsServer, serve


@pytest.fixture(scope="module")
def ctx(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    work = tmp_path_factory.mktemp("wiring")
    yield build_site(work, shared_data, notify_queue_size=5, notify_heartbeat_seconds=7.5)


@pytest.fixture(scope="module")
def server(ctx: AppContext) -> Iterator[WsServer]:
    with serve(ctx, notification_hub(ctx)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: WsServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, trust_env=False, timeout=30) as client:
        yield client


def test_create_app_wires_the_hub_and_the_routes(ctx: AppContext, http: httpx.Client) -> None:
    app = create_app(ctx.settings, ctx)  # no lifespan: nothing starts
    hub = app.state.notify_hub
    assert isinstance(hub, NotificationHub) and not hub.running
    assert (hub.queue_size, hub.heartbeat_seconds) == (5, 7.5)
    last = ROUTERS.index(imageserver.fallback_router)
    assert last == len(ROUTERS) - 1
    assert all(ROUTERS.index(r) < last for r in (notify.router, viewer.router, ingest.router))
    # mounted under the root: the ingest endpoint answers with an ArcGIS error, not 404
    r = http.post("/arcgis/livemosaic/ingest", data={"paths": "x", "f": "json"})
    assert r.json()["error"]["code"] == 499


def test_service_page_links_the_live_viewer(http: httpx.Client) -> None:
    page = http.get("/arcgis/rest/services/Live/live/ImageServer", params={"f": "html"}).text
    assert 'href="/arcgis/livemosaic/viewer/Live/live">Live viewer</a>' in page
    assert http.get("/arcgis/livemosaic/viewer/Live/live").status_code == 200


def recv(ws: ClientConnection, event: str) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["event"] != "heartbeat":
            assert message["event"] == event, message
            return dict(message)


def subscribe(server: WsServer, service: str, token: str | None) -> dict[str, Any]:
    """Connect (with ``token``), subscribe to ``service``; the answer (or the handshake's
    refusal of a token that is not good: an error event, then close code 4498)."""
    query = f"?token={token}" if token else ""
    with connect(server.ws_url + query, proxy=None, open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        if hello["event"] == "error":
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 4498, (ws.close_code, ws.close_reason)
            return dict(hello)
        assert hello["queueSize"] == 5 and hello["heartbeatSeconds"] == 7.5
        ws.send(json.dumps({"op": "subscribe", "services": [service]}))
        return dict(json.loads(ws.recv(timeout=10)))


@pytest.mark.parametrize(
    ("service", "user", "allowed"),
    [
        ("Live/live", None, True),  # public: anyone
        ("Private/sec", None, False),  # secured: a token is required
        ("Private/sec", "viewer", True),  # any signed-in user
        ("Private/granted", "pub1", True),  # allowedUsers=pub1
        ("Private/granted", "pub2", False),  # not granted
        ("Private/granted", "admin", True),  # administrators read everything
    ],
)
def test_secured_services_need_a_token_that_may_read_them(
    server: WsServer, http: httpx.Client, service: str, user: str | None, allowed: bool
) -> None:
    token = sign_in(http, user) if user else None
    answer = subscribe(server, service, token)
    if allowed:
        assert answer["event"] == "subscribed", answer
        assert answer["services"] == [f"{service}.ImageServer"]
    else:
        assert answer["event"] == "error", answer
        assert answer["code"] in (498, 499, 403), answer


def test_bad_or_revoked_tokens_are_refused(
    server: WsServer, http: httpx.Client, ctx: AppContext
) -> None:
    assert subscribe(server, "Private/sec", "not-a-token")["event"] == "error"
    token = sign_in(http, "viewer")
    assert subscribe(server, "Private/sec", token)["event"] == "subscribed"
    user = ctx.users.get_user("viewer")
    for changed in (replace(user, disabled=True), replace(user, token_epoch=user.token_epoch + 1)):
        ctx.users.save_user(changed)  # disabled, or a new password or role
        try:
            assert subscribe(server, "Private/sec", token)["event"] == "error"
        finally:
            ctx.users.save_user(user)
    assert subscribe(server, "Private/sec", token)["event"] == "subscribed"
