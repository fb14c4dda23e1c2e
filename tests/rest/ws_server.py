"""A real livemosaic server with the notification WebSocket and the live viewer, for tests.

``serve(ctx, hub)`` runs uvicorn (WebSockets enabled) on 127.0.0.1 at a free port in a thread
with ``app.state.notify_hub`` set to the given hub. ``create_app`` mounts the notification and
viewer routers itself (once); :func:`check_routes` only checks they are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from livemosaic.app import AppContext, create_app
from livemosaic.rest import notify, viewer
from livemosaic.rest.notify_hub import NotificationHub


@dataclass
class WsServer:
    """Addresses of a running server."""

    base: str  # http://127.0.0.1:port
    root: str  # /arcgis
    app: FastAPI
    hub: NotificationHub

    @property
    def ws_url(self) -> str:
        """The notification endpoint."""
        return self.base.replace("http://", "ws://") + self.root + notify.WS_PATH

    def viewer_url(self, qualified: str) -> str:
        """The live viewer page of ``Folder/Name``."""
        return f"{self.base}{self.root}{viewer.VIEWER_PATH}/{qualified}"


def check_routes(app: FastAPI, root: str) -> None:
    """Fail unless ``create_app`` mounted the notification and viewer routes under ``/{root}``.

    Looked up by endpoint name: in recent FastAPI, ``app.routes`` holds included routers
    (without a ``path``), not the routes inside them.
    """
    prefix = "/" + root.strip("/").lower()
    ws = app.url_path_for(notify.notifications.__name__)
    asset = app.url_path_for(viewer.viewer_asset.__name__, filename="viewer.js")
    assert ws == prefix + notify.WS_PATH, ws
    assert asset == prefix + viewer.STATIC_PATH + "/viewer.js", asset


@contextlib.contextmanager
def serve(ctx: AppContext, hub: NotificationHub) -> Iterator[WsServer]:
    """Run the app of ``ctx`` with ``hub`` until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    app = create_app(ctx.settings, ctx)
    check_routes(app, ctx.settings.root)
    app.state.notify_hub = hub
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="websockets-sansio", http="h11"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield WsServer(f"http://127.0.0.1:{port}", "/" + ctx.settings.root.lower(), app, hub)
    finally:
        loop = hub.loop
        if loop is not None and loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(hub.stop(), loop).result(timeout=10)
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
