"""A real livemosaic server for end-to-end tests: uvicorn in a thread on 127.0.0.1, built from
sample data, with a recorder of every request it receives.

:func:`make_server` builds the settings, populates the catalog (a callback), adds users and
runs the app; tests of the ArcGIS API for Python and of :mod:`livemosaic.client` share it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from livemosaic.adapters.catalog import open_stores
from livemosaic.app import AppContext, build_context, create_app
from livemosaic.core.ingest import Ingestor
from livemosaic.core.security import Role, User, hash_password
from livemosaic.settings import Settings

ROOT = "arcgis"
RESPONSE_BYTES = 4096


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response: bytes = b""  # the first bytes of the response body


@dataclass
class RequestLog:
    """ASGI wrapper that records every HTTP request (method, path, query, headers, body) and
    the start of its response.

    It lets a test state exactly what a real client sent (e.g. where it put the token) and
    what the server answered.
    """

    app: Any
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status = [0]
        answer: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            elif message["type"] == "http.response.body" and sum(map(len, answer)) < RESPONSE_BYTES:
                answer.append(bytes(message.get("body", b""))[:RESPONSE_BYTES])
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        finally:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            entry = Recorded(
                scope["method"],
                scope["path"],
                scope.get("query_string", b"").decode("latin-1"),
                headers,
                b"".join(chunks),
                status[0],
                b"".join(answer)[:RESPONSE_BYTES],
            )
            with self.lock:
                self.requests.append(entry)

    def mark(self) -> int:
        """The number of requests so far (pass it to :meth:`since`)."""
        with self.lock:
            return len(self.requests)

    def since(self, mark: int) -> list[Recorded]:
        """Requests received after ``mark``."""
        with self.lock:
            return list(self.requests[mark:])

    @staticmethod
    def error_code(entry: Recorded) -> int | None:
        """The ArcGIS error code of a recorded JSON error response (None otherwise)."""
        try:
            body = json.loads(entry.response)
        except ValueError:
            return None
        error = body.get("error") if isinstance(body, dict) else None
        return int(error["code"]) if isinstance(error, dict) and "code" in error else None


@dataclass
class LiveServer:
    """A running livemosaic server."""

    base: str  # http://127.0.0.1:port
    root: str  # http://127.0.0.1:port/arcgis
    ctx: AppContext
    settings: Settings
    data: Path
    log: RequestLog

    def service_url(self, service: str) -> str:
        """Absolute URL of an image service (``Folder/Name`` or ``Name``)."""
        return f"{self.root}/rest/services/{service}/ImageServer"


def free_socket() -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: Any, sock: socket.socket) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on ``sock``; yields ``http://127.0.0.1:port``."""
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


Populate = Callable[[AppContext, Ingestor, Path], None]


def add_users(settings: Settings, users: dict[str, tuple[Role, str]]) -> None:
    """Create users ``{name: (role, password)}`` in the server's catalog database."""
    stores = open_stores(settings.effective_catalog_url)
    try:
        for name, (role, password) in users.items():
            stores.users.add_user(
                User(username=name, role=role, password_hash=hash_password(password))
            )
    finally:
        stores.close()


@contextmanager
def make_server(
    work: Path,
    data: Path,
    populate: Populate,
    *,
    users: dict[str, tuple[Role, str]] | None = None,
    **overrides: Any,
) -> Iterator[LiveServer]:
    """Build, populate and run a server (settings ``overrides`` on top of the test defaults)."""
    sock = free_socket()
    port = int(sock.getsockname()[1])
    options: dict[str, Any] = {
        "data_dir": work / "data",
        "data_folders": [data],
        "root": ROOT,
        "host": "127.0.0.1",
        "port": port,
        "read_threads": 4,
    }
    options.update(overrides)
    settings = Settings(**options)
    ctx = build_context(settings)
    populate(ctx, Ingestor(ctx.catalog, ctx.source, list(settings.data_folders)), data)
    if users:
        add_users(settings, users)
    log = RequestLog(create_app(settings, ctx))
    with serve(log, sock) as base:
        yield LiveServer(base, f"{base}/{ROOT}", ctx, settings, data, log)


def add_dataset(ing: Ingestor, name: str, paths: list[Path], **create: Any) -> None:
    """Create a dataset and add files to it (every file must be accepted)."""
    ing.create_dataset(name, **create)
    report = ing.add_paths(name, paths)
    assert not report.rejected, report.rejected
    assert report.added > 0, name
