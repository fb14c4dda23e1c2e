"""The notification WebSocket against a real server: uvicorn on 127.0.0.1, real WebSocket clients.

Services: ``Live/watch`` (mosaic/rgb1-3, rgb4 added by a test), ``Live/ndvi`` (five MODIS
NDVI dates, the sixth added by a test), ``Live/secret`` (private, over the watch dataset) and
``Live/burst`` (swapped many times with large messages to fill slow clients' buffers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from livemosaic.app import AppContext, build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import DimensionSummary, ServiceDefinition, VariableSummary
from livemosaic.core.registry import ServiceRegistry
from livemosaic.rest.notify_hub import Credentials, NotificationHub
from livemosaic.settings import Settings
from tests.rest.ws_server import WsServer, serve

GOOD_TOKEN = "let-me-in"
NDVI_PATTERN = r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
NDVI_LAST = "TERRA_MODIS_012010_NDVI_2014-02-18.jp2"
BURST_VALUES = 3000  # dimension values in each burst message (~60 kB of JSON)


def token_authorizer(registry: ServiceRegistry):
    """Public services for everyone, private ones only with GOOD_TOKEN."""

    def authorize(credentials: Credentials, key: str) -> bool:
        folder, _, name = key.rpartition("/")
        snapshot = registry.find(folder, name)
        if snapshot is None:
            return False
        return not snapshot.definition.private or credentials.token == GOOD_TOKEN

    return authorize


def make_hub(ctx: AppContext, **kwargs: Any) -> NotificationHub:
    kwargs.setdefault("queue_size", 8)
    kwargs.setdefault("heartbeat_seconds", 0.5)
    return NotificationHub(ctx.registry, authorize=token_authorizer(ctx.registry), **kwargs)


@pytest.fixture(scope="module")
def ctx(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    work = tmp_path_factory.mktemp("notify")
    settings = Settings(data_dir=work / "data", data_folders=[shared_data], root="arcgis")
    ctx = build_context(settings)
    ing = Ingestor(ctx.catalog, ctx.source, [shared_data])
    ing.create_dataset("watch")
    report = ing.add_paths("watch", [shared_data / f"mosaic/rgb{i}.tif" for i in (1, 2, 3)])
    assert report.added == 3, report
    ing.create_dataset("ndvi", time_pattern=NDVI_PATTERN)
    dates = sorted((shared_data / "timeseries/modis_ndvi").glob("*.jp2"))
    report = ing.add_paths("ndvi", [p for p in dates if p.name != NDVI_LAST])
    assert report.added == 5, report
    live = {"hasLiveData": "true"}
    for name, dataset, private in (
        ("watch", "watch", False),
        ("ndvi", "ndvi", False),
        ("secret", "watch", True),
        ("burst", "watch", False),
        ("evict", "watch", False),
    ):
        ctx.publisher.publish(
            ServiceDefinition(name, dataset, folder="Live", private=private, properties=live)
        )
    yield ctx


@pytest.fixture(scope="module")
def server(ctx: AppContext) -> Iterator[WsServer]:
    with serve(ctx, make_hub(ctx)) as srv:
        yield srv


@contextlib.contextmanager
def open_ws(server: WsServer, query: str = "", **kwargs: Any) -> Iterator[ClientConnection]:
    """A connected client that has received the hello message."""
    kwargs.setdefault("compression", None)
    with connect(server.ws_url + query, proxy=None, open_timeout=10, **kwargs) as ws:
        hello = recv(ws, "hello")
        assert hello["heartbeatSeconds"] > 0 and hello["queueSize"] >= 1
        yield ws


def recv_any(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=timeout))
    assert isinstance(message, dict) and isinstance(message.get("event"), str), message
    return message


def recv(ws: ClientConnection, event: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of kind ``event``, skipping heartbeats (fails on anything else)."""
    deadline = time.monotonic() + timeout
    while True:
        message = recv_any(ws, max(0.01, deadline - time.monotonic()))
        if message["event"] == "heartbeat" and event != "heartbeat":
            continue
        assert message["event"] == event, message
        return message


def subscribe(ws: ClientConnection, *services: str) -> dict[str, Any]:
    ws.send(json.dumps({"op": "subscribe", "services": list(services)}))
    return recv(ws, "subscribed")


def no_refresh_until_pong(ws: ClientConnection) -> None:
    """Ping and read up to the pong: nothing but heartbeats may come before it."""
    ws.send(json.dumps({"op": "ping"}))
    while True:
        message = recv_any(ws)
        if message["event"] == "pong":
            return
        assert message["event"] == "heartbeat", message


def ingest(ctx: AppContext, dataset: str, path: Path) -> None:
    report = Ingestor(ctx.catalog, ctx.source, [path.parent]).add_paths(dataset, [path])
    assert report.added >= 1 and not report.rejected, report


def test_subscribe_then_refresh_message(ctx: AppContext, server: WsServer, shared_data: Path):
    before = ctx.registry.get("Live", "watch")
    with open_ws(server) as ws:
        reply = subscribe(ws, "live/WATCH.imageserver")
        assert reply["services"] == ["Live/watch.ImageServer"]
        assert reply["versions"] == {"Live/watch.ImageServer": before.version}

        ingest(ctx, "watch", shared_data / "mosaic/rgb4.tif")
        started = int(time.time() * 1000)
        _old, new = ctx.publisher.republish("Live", "watch")
        message = recv(ws, "serviceRefreshed")

    assert message["service"] == "Live/watch.ImageServer"
    assert message["generation"] == message["version"] == new.version == before.version + 1
    assert message["previousGeneration"] == before.version
    assert message["itemCount"] == 4 and message["itemsAdded"] == 1
    assert message["itemsRemoved"] == 0
    assert "itemCount" in message["changed"]
    assert started - 1000 <= message["time"] <= int(time.time() * 1000) + 1000
    extent = message["extent"]
    ext = new.summary.extent
    assert ext is not None
    assert [extent[k] for k in ("xmin", "ymin", "xmax", "ymax")] == pytest.approx(
        [ext.xmin, ext.ymin, ext.xmax, ext.ymax]
    )
    assert extent["spatialReference"] == new.spatial_reference.to_json()
    assert message["timeExtent"] is None and message["dimensions"] == {}


def test_time_extent_change_is_reported(ctx: AppContext, server: WsServer, shared_data: Path):
    before = ctx.registry.get("Live", "ndvi").summary.time_extent
    assert before is not None
    with open_ws(server) as ws:
        subscribe(ws, "Live/ndvi.ImageServer")
        ingest(ctx, "ndvi", shared_data / "timeseries/modis_ndvi" / NDVI_LAST)
        ctx.publisher.republish("Live", "ndvi")
        message = recv(ws, "serviceRefreshed")
    assert message["service"] == "Live/ndvi.ImageServer"
    assert "timeInfo.timeExtent" in message["changed"]
    assert message["timeExtent"][0] == before[0]
    assert message["timeExtent"][1] > before[1]
    assert message["itemsAdded"] == 1


def test_only_subscribed_services_are_sent(ctx: AppContext, server: WsServer):
    with open_ws(server) as a, open_ws(server) as b:
        subscribe(a, "Live/ndvi.ImageServer")
        subscribe(b, "Live/watch.ImageServer", "Live/ndvi.ImageServer")
        _old, new = ctx.publisher.republish("Live", "watch")
        got = recv(b, "serviceRefreshed")
        assert got["service"] == "Live/watch.ImageServer" and got["generation"] == new.version
        no_refresh_until_pong(a)

        b.send(json.dumps({"op": "unsubscribe", "services": ["Live/watch.ImageServer"]}))
        assert recv(b, "unsubscribed")["services"] == ["Live/watch.ImageServer"]
        ctx.publisher.republish("Live", "watch")
        no_refresh_until_pong(b)


def test_heartbeats_reach_idle_clients(server: WsServer):
    with open_ws(server) as ws:
        times = [recv(ws, "heartbeat", timeout=5)["time"] for _ in range(3)]
    assert times == sorted(times) and times[-1] > times[0]
    assert times[-1] - times[0] < 5000


def test_bad_messages_get_errors_and_the_connection_survives(server: WsServer):
    cases: list[str | bytes] = [
        "this is not json",
        "[1, 2, 3]",
        json.dumps({"op": "dance"}),
        json.dumps({"services": ["Live/watch.ImageServer"]}),
        json.dumps({"op": "subscribe"}),
        json.dumps({"op": "subscribe", "services": []}),
        json.dumps({"op": "subscribe", "services": [42]}),
        json.dumps({"op": "subscribe", "services": ["Live/watch.MapServer"]}),
        json.dumps({"op": "subscribe", "services": ["a/b/c.ImageServer"]}),
        b"\xff\xfe\x00",
        json.dumps({"op": "subscribe", "services": ["x" * 70_000]}),
    ]
    with open_ws(server) as ws:
        for case in cases:
            ws.send(case)
            error = recv(ws, "error")
            assert error["code"] == 400 and error["message"], (case, error)
        ws.send(json.dumps({"op": "subscribe", "services": ["Nope/missing.ImageServer"]}))
        missing = recv(ws, "error")
        assert missing["code"] == 404 and "missing" in missing["message"]
        assert missing["service"] == "Nope/missing.ImageServer"
        no_refresh_until_pong(ws)
        reply = subscribe(ws, "Live/watch.ImageServer")
        assert reply["services"] == ["Live/watch.ImageServer"]


def test_partial_subscription_reports_each_refusal(server: WsServer):
    with open_ws(server) as ws:
        ws.send(
            json.dumps(
                {
                    "op": "subscribe",
                    "services": ["Live/watch.ImageServer", "Live/secret.ImageServer"],
                }
            )
        )
        assert recv(ws, "subscribed")["services"] == ["Live/watch.ImageServer"]
        denied = recv(ws, "error")
        assert denied["code"] == 499 and denied["service"] == "Live/secret.ImageServer"


def test_secured_service_needs_a_token(ctx: AppContext, server: WsServer):
    secret = "Live/secret.ImageServer"
    with (
        open_ws(server) as anonymous,
        open_ws(server, "?token=wrong") as wrong,
        open_ws(server, f"?token={GOOD_TOKEN}") as by_query,
        open_ws(
            server, additional_headers={"X-Esri-Authorization": f"Bearer {GOOD_TOKEN}"}
        ) as by_header,
    ):
        anonymous.send(json.dumps({"op": "subscribe", "services": [secret]}))
        refused = recv(anonymous, "error")
        assert refused["code"] == 499 and "token" in refused["message"].lower()
        wrong.send(json.dumps({"op": "subscribe", "services": [secret]}))
        assert recv(wrong, "error")["code"] == 403
        for ws in (by_query, by_header):
            assert subscribe(ws, secret)["services"] == [secret]

        _old, new = ctx.publisher.republish("Live", "secret")
        for ws in (by_query, by_header):
            message = recv(ws, "serviceRefreshed")
            assert message["service"] == secret and message["generation"] == new.version
        no_refresh_until_pong(anonymous)
        no_refresh_until_pong(wrong)


def burst_snapshots(ctx: AppContext, name: str, count: int):
    """``count`` successive snapshots of ``Live/name`` with large messages (many dim values)."""
    base = ctx.registry.get("Live", name)
    variable = VariableSummary(
        "v", (DimensionSummary("StdZ", tuple(float(i) + 0.123456789 for i in range(BURST_VALUES))),)
    )
    summary = replace(base.summary, variables=(variable,))
    return [replace(base, summary=summary, version=base.version + i + 1) for i in range(count)]


def reader(ws: ClientConnection, seen: list[dict[str, Any]], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            message = json.loads(ws.recv(timeout=0.2))
        except TimeoutError:
            continue
        except ConnectionClosed:
            return
        seen.append(message)


def subscriber_of(hub: NotificationHub, service_key: str, newest: bool = True):
    subs = [s for s in hub.subscribers() if service_key in s.services]
    return max(subs, key=lambda s: s.id) if newest else subs


def test_slow_client_does_not_hold_up_others(ctx: AppContext, server: WsServer):
    hub = server.hub
    service = "Live/burst.ImageServer"
    with (
        open_ws(server, max_queue=1) as slow,
        open_ws(server, max_size=2**24) as fast,
    ):
        subscribe(slow, service)
        slow_sub = subscriber_of(hub, "live/burst")
        subscribe(fast, service)
        fast_sub = subscriber_of(hub, "live/burst")
        assert slow_sub is not fast_sub
        seen: list[dict[str, Any]] = []
        stop = threading.Event()
        thread = threading.Thread(target=reader, args=(fast, seen, stop), daemon=True)
        thread.start()
        try:
            swaps = burst_snapshots(ctx, "burst", 2000)
            sent = 0
            deadline = time.monotonic() + 60
            # swap until the slow client's queue overflows (its socket buffers are full)
            while slow_sub.dropped == 0 and sent < len(swaps) - 20 and time.monotonic() < deadline:
                # fewer swaps than the queue holds, then wait until the fast client has them
                for snap in swaps[sent : sent + 4]:
                    ctx.registry.swap(snap)
                sent += 4
                newest = swaps[sent - 1].version
                assert wait_until(
                    lambda v=newest: any(m.get("generation") == v for m in seen[-4:]), 10
                )
            assert slow_sub.dropped > 0, "the slow client's buffers never filled"
            for snap in swaps[sent : sent + 4]:
                ctx.registry.swap(snap)
            sent += 4
            last = swaps[sent - 1].version
            assert wait_until(lambda: any(m.get("generation") == last for m in seen), 10)
        finally:
            stop.set()
            thread.join(timeout=10)
        assert slow_sub.queue.qsize() <= hub.queue_size
        generations = [m["generation"] for m in seen if m["event"] == "serviceRefreshed"]
        assert generations == [s.version for s in swaps[:sent]], "the fast client missed messages"
        assert not [m for m in seen if m["event"] == "lagging"]

        # the slow client reads again: it learns how much it skipped and catches up to the end
        got: list[dict[str, Any]] = []
        while not any(m.get("generation") == last for m in got):
            got.append(recv_any(slow, timeout=10))
        lagging = [m for m in got if m["event"] == "lagging"]
        assert lagging and sum(m["skipped"] for m in lagging) == slow_sub.dropped
        refreshed = [m for m in got if m["event"] == "serviceRefreshed"]
        assert 0 < sent - len(refreshed) <= slow_sub.dropped  # heartbeats may be dropped too
        assert [m["generation"] for m in refreshed] == sorted(m["generation"] for m in refreshed)


@contextlib.contextmanager
def using_hub(server: WsServer, hub: NotificationHub) -> Iterator[WsServer]:
    """New connections to ``server`` use ``hub`` inside the block."""
    previous = server.app.state.notify_hub
    server.app.state.notify_hub = hub
    try:
        yield replace(server, hub=hub)
    finally:
        server.app.state.notify_hub = previous
        if hub.loop is not None:
            asyncio.run_coroutine_threadsafe(hub.stop(), hub.loop).result(timeout=10)


def test_client_lagging_too_long_is_disconnected(ctx: AppContext, server: WsServer):
    hub = make_hub(ctx, queue_size=2, max_lag_seconds=0.3, heartbeat_seconds=0.2)
    with using_hub(server, hub) as srv, open_ws(srv, max_queue=1) as slow, open_ws(srv) as other:
        subscribe(slow, "Live/evict.ImageServer")
        swaps = iter(burst_snapshots(ctx, "evict", 5000))
        deadline = time.monotonic() + 60
        while hub.stats.evicted == 0 and time.monotonic() < deadline:
            for _ in range(5):
                ctx.registry.swap(next(swaps))
            time.sleep(0.01)
        assert hub.stats.evicted == 1
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                slow.recv(timeout=10)
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1013
        assert not [s for s in hub.subscribers() if "live/evict" in s.services]
        no_refresh_until_pong(other)  # the other client was never affected


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()
