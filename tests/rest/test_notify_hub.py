"""NotificationHub and the serviceRefreshed message, on a real event loop without a network."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from typing import Any

import pytest

from livemosaic.adapters.events import LocalEventBus
from livemosaic.core.events import ItemsChanged, ServiceRefreshed
from livemosaic.core.models import (
    DatasetSummary,
    DimensionSummary,
    Extent,
    MosaicDataset,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
    VariableSummary,
)
from livemosaic.core.registry import ServiceRegistry
from livemosaic.errors import InvalidParameter, LimitExceeded
from livemosaic.rest.notify_hub import (
    CLOSE_TOKEN_INVALID,
    Credentials,
    NotificationHub,
    parse_service_name,
    refresh_message,
)


def snapshot(
    name: str = "sst",
    folder: str = "Ocean",
    version: int = 1,
    items: int = 2,
    private: bool = False,
    **summary: Any,
) -> ServiceSnapshot:
    return ServiceSnapshot(
        definition=ServiceDefinition(name, name, folder=folder, private=private),
        dataset=MosaicDataset(name, "EPSG:4326"),
        summary=DatasetSummary(item_count=items, **summary),
        spatial_reference=SpatialRef.from_epsg(4326),
        version=version,
        published_at=0,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ocean/sst.ImageServer", ("Ocean", "sst")),
        ("ocean/SST.imageserver", ("ocean", "SST")),
        ("/Ocean/sst/", ("Ocean", "sst")),
        ("sst.ImageServer", ("", "sst")),
        ("sst", ("", "sst")),
    ],
)
def test_parse_service_name(text: str, expected: tuple[str, str]):
    assert parse_service_name(text) == expected


@pytest.mark.parametrize("text", ["", "  ", 7, None, "a/b/c.ImageServer", "Ocean/sst.MapServer"])
def test_parse_service_name_refuses(text: object):
    with pytest.raises(InvalidParameter):
        parse_service_name(text)


def test_refresh_message_reports_what_changed():
    dims = (DimensionSummary("StdTime", (1000.0, 2000.0)), DimensionSummary("StdZ", (-5.0,)))
    old = snapshot(version=3, items=4, extent=Extent(0, 0, 10, 10), time_extent=(1000, 2000))
    new = snapshot(
        version=4,
        items=3,
        extent=Extent(0, 0, 20, 10),
        time_extent=(1000, 3000),
        variables=(VariableSummary("temp", dims),),
    )
    message = refresh_message(old, new, time_ms=1234)
    assert message == {
        "event": "serviceRefreshed",
        "service": "Ocean/sst.ImageServer",
        "generation": 4,
        "version": 4,
        "previousGeneration": 3,
        "changed": [
            "extent",
            "fullExtent",
            "initialExtent",
            "timeInfo.timeExtent",
            "multidimensionalInfo",
            "itemCount",
        ],
        "extent": {
            "xmin": 0,
            "ymin": 0,
            "xmax": 20,
            "ymax": 10,
            "spatialReference": {"wkid": 4326, "latestWkid": 4326},
        },
        "timeExtent": [1000, 3000],
        "dimensions": {"temp": {"StdTime": [1000.0, 2000.0], "StdZ": [-5.0]}},
        "itemCount": 3,
        "itemsAdded": 0,
        "itemsRemoved": 1,
        "time": 1234,
    }
    json.dumps(message, allow_nan=False)


def test_refresh_message_first_publish_and_definition_edit():
    first = refresh_message(None, snapshot(items=2, extent=Extent(0, 0, 1, 1)))
    assert first["previousGeneration"] is None and first["itemsAdded"] == 2
    assert "extent" in first["changed"] and "itemCount" in first["changed"]
    old = snapshot(version=1)
    edited = replace(old, version=2, definition=replace(old.definition, description="new"))
    assert refresh_message(old, edited)["changed"] == ["serviceDefinition"]
    weird = refresh_message(None, snapshot(extent=Extent(float("nan"), 0, 1, 1)))
    assert weird["extent"]["xmin"] is None


def make_hub(registry: ServiceRegistry, **kwargs: Any) -> NotificationHub:
    kwargs.setdefault("queue_size", 3)
    kwargs.setdefault("heartbeat_seconds", 3600.0)
    return NotificationHub(registry, **kwargs)


async def drain(sub, count: int) -> list[dict]:
    return [json.loads(await asyncio.wait_for(sub.next(), 2)) for _ in range(count)]


def test_swap_on_a_worker_thread_reaches_subscribers():
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))
    registry.swap(snapshot("other", version=1))

    async def main() -> None:
        hub = make_hub(registry)
        hub.start()
        sub, other = hub.connect(None), hub.connect(None)
        result = hub.subscribe(sub, ["Ocean/sst.ImageServer"])
        assert result.services == ["Ocean/sst.ImageServer"]
        assert result.versions == {"Ocean/sst.ImageServer": 1}
        hub.subscribe(other, ["Ocean/other.ImageServer"])
        worker = threading.Thread(target=registry.swap, args=(snapshot(version=2, items=5),))
        worker.start()
        worker.join()
        [message] = await drain(sub, 1)
        assert message["generation"] == 2 and message["itemsAdded"] == 3
        assert other.queue.empty()
        await asyncio.sleep(0.05)
        assert other.queue.empty() and hub.stats.published == 1 and hub.stats.queued == 1
        await hub.stop()
        assert sub.closed.is_set() and sub.close_code == 1001

    asyncio.run(main())


def test_full_queue_drops_the_oldest_and_announces_it():
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))

    async def main() -> None:
        hub = make_hub(registry, queue_size=3)
        hub.start()
        sub = hub.connect(None)
        hub.subscribe(sub, ["Ocean/sst"])
        for version in range(2, 9):  # 7 messages into a queue of 3
            registry.swap(snapshot(version=version))
        await asyncio.sleep(0.05)
        assert sub.lagging and sub.dropped == 4 and hub.stats.dropped == 4
        got = await drain(sub, 4)
        assert got[0] == {"event": "lagging", "skipped": 4, "time": got[0]["time"]}
        assert [m["generation"] for m in got[1:]] == [6, 7, 8]
        assert not sub.lagging  # caught up
        await hub.stop()

    asyncio.run(main())


def test_client_lagging_longer_than_allowed_is_evicted():
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))
    now = [100.0]

    async def main() -> None:
        hub = make_hub(registry, queue_size=1, max_lag_seconds=5.0, clock=lambda: now[0])
        hub.start()
        slow, fine = hub.connect(None), hub.connect(None)
        hub.subscribe(slow, ["Ocean/sst"])
        registry.swap(snapshot(version=2))
        registry.swap(snapshot(version=3))  # slow starts lagging at t=100
        await asyncio.sleep(0.05)
        assert slow.lagging and not slow.closed.is_set()
        now[0] = 104.0
        registry.swap(snapshot(version=4))  # still losing messages
        await asyncio.sleep(0.05)
        hub.heartbeat()
        assert not slow.closed.is_set() and slow.dropped == 2
        assert json.loads(fine.queue.get_nowait())["event"] == "heartbeat"
        assert slow.queue.qsize() == 1  # no heartbeat for a client that has work queued
        now[0] = 106.0
        hub.heartbeat()
        assert slow.closed.is_set() and slow.close_code == 1013
        assert slow not in hub.subscribers() and fine in hub.subscribers()
        assert hub.stats.evicted == 1
        await hub.stop()

    asyncio.run(main())


def test_a_client_that_stops_losing_messages_is_not_evicted():
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))
    now = [100.0]

    async def main() -> None:
        hub = make_hub(registry, queue_size=1, max_lag_seconds=5.0, clock=lambda: now[0])
        hub.start()
        sub = hub.connect(None)
        hub.subscribe(sub, ["Ocean/sst"])
        registry.swap(snapshot(version=2))
        registry.swap(snapshot(version=3))  # one drop at t=100
        await asyncio.sleep(0.05)
        assert sub.lagging
        now[0] = 106.0  # no drop for longer than max_lag: the lag is over
        hub.heartbeat()
        assert not sub.closed.is_set() and not sub.lagging
        now[0] = 107.0
        registry.swap(snapshot(version=4))  # a new episode starts now, not at t=100
        await asyncio.sleep(0.05)
        assert not sub.closed.is_set() and sub.lag_since == 107.0
        await hub.stop()

    asyncio.run(main())


def test_authorization_at_subscribe_and_when_a_service_turns_private():
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))
    registry.swap(snapshot("vault", version=1, private=True))

    def authorize(credentials: Credentials, key: str) -> bool:
        folder, _, name = key.rpartition("/")
        snap = registry.find(folder, name)
        return snap is not None and (not snap.definition.private or credentials.token == "ok")

    async def main() -> None:
        hub = make_hub(registry, authorize=authorize, queue_size=10)
        hub.start()
        anonymous, holder, wrong = hub.connect(None), hub.connect("ok"), hub.connect("bad")
        refused = hub.subscribe(anonymous, ["Ocean/vault", "Ocean/sst"])
        assert refused.services == ["Ocean/sst.ImageServer"]
        assert [e["code"] for e in refused.errors] == [499]
        assert hub.subscribe(wrong, ["Ocean/vault"]).errors[0]["code"] == 403
        assert hub.subscribe(holder, ["Ocean/vault", "Ocean/sst"]).services == [
            "Ocean/vault.ImageServer",
            "Ocean/sst.ImageServer",
        ]
        current = registry.get("Ocean", "sst")
        secured = replace(current, version=2, definition=replace(current.definition, private=True))
        registry.swap(secured)
        await asyncio.sleep(0.05)
        [notice] = await drain(anonymous, 1)
        assert notice["event"] == "error" and notice["code"] == 499
        assert "cancelled" in notice["message"]
        assert "ocean/sst" not in anonymous.services
        [message] = await drain(holder, 1)
        assert message["event"] == "serviceRefreshed" and "serviceDefinition" in message["changed"]
        await hub.stop()

    asyncio.run(main())


def test_limits_and_unsubscribe():
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))

    async def main() -> None:
        hub = make_hub(registry, max_clients=1, max_services=1)
        sub = hub.connect(None)  # binds to the running loop
        assert hub.running
        with pytest.raises(LimitExceeded):
            hub.connect(None)
        assert hub.subscribe(sub, ["Ocean/sst", "Nowhere/x"]).errors[0]["code"] == 404
        assert hub.unsubscribe(sub, ["Ocean/sst.ImageServer"]).services == ["Ocean/sst.ImageServer"]
        registry.swap(snapshot(version=2))
        await asyncio.sleep(0.05)
        assert sub.queue.empty()
        hub.disconnect(sub)
        assert hub.stats.clients == 0
        await hub.stop()

    asyncio.run(main())


def test_bad_settings_are_refused():
    with pytest.raises(InvalidParameter):
        NotificationHub(ServiceRegistry(), queue_size=0)
    with pytest.raises(InvalidParameter):
        NotificationHub(ServiceRegistry(), heartbeat_seconds=0)


def test_tokens_are_checked_on_a_timer_and_before_secured_messages():
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))
    registry.swap(snapshot("vault", version=1, private=True))
    revoked: set[str] = set()

    def check(credentials: Credentials) -> str | None:
        return "The token was revoked." if credentials.token in revoked else None

    async def main() -> None:
        hub = make_hub(
            registry,
            authorize=lambda credentials, key: True,
            check_token=check,
            token_check_seconds=3600,
            queue_size=10,
        )
        hub.start()
        assert hub.token_problem(Credentials(None)) is None  # anonymous: nothing to check
        public, secured, other = hub.connect("a"), hub.connect("b"), hub.connect("c")
        hub.subscribe(public, ["Ocean/sst"])
        for sub in (secured, other):
            hub.subscribe(sub, ["Ocean/vault"])
        revoked.update({"a", "b"})
        # a message of a secured service: its subscriber's token is checked first
        registry.swap(replace(registry.get("Ocean", "vault"), version=2))
        await asyncio.sleep(0.05)
        assert secured.closed.is_set() and secured.close_code == CLOSE_TOKEN_INVALID
        assert secured.close_reason == "The token was revoked." and secured.queue.empty()
        [message] = await drain(other, 1)
        assert message["event"] == "serviceRefreshed"
        # a public service's message is not held up; the timer closes the connection
        assert not public.closed.is_set()
        assert hub.check_tokens() == 1
        assert public.closed.is_set() and public.close_code == CLOSE_TOKEN_INVALID
        assert hub.subscribers() == [other] and hub.stats.expired == 2
        await hub.stop()

    asyncio.run(main())


def test_a_failing_token_check_refuses():
    registry = ServiceRegistry()

    def broken(credentials: Credentials) -> str | None:
        raise RuntimeError("store down")

    hub = make_hub(registry, check_token=broken)
    assert hub.token_problem(Credentials("t")) == "the token could not be checked"


def test_the_hub_follows_the_event_bus_it_is_given():
    """Swaps announced on the bus and items changed in any process reach the clients; the
    hub itself never listens to the registry."""
    registry = ServiceRegistry()
    registry.swap(snapshot(version=1))
    bus = LocalEventBus()

    async def main() -> None:
        hub = make_hub(registry, events=bus)
        hub.start()
        sub = hub.connect(None)
        hub.subscribe(sub, ["Ocean/sst"])
        registry.swap(snapshot(version=2))  # nobody announces it on this bus: no message
        await asyncio.sleep(0.05)
        assert sub.queue.empty()
        old, new = registry.get("Ocean", "sst"), snapshot(version=3, items=4)
        registry.swap(new)
        threading.Thread(target=bus.publish, args=(ServiceRefreshed(old, new),)).start()
        threading.Thread(target=bus.publish, args=(ItemsChanged("Ocean", "sst", 2, 0),)).start()
        bus.publish(ItemsChanged("Ocean", "other", 1, 0))  # not followed
        got = await drain(sub, 2)
        by_event = {m["event"]: m for m in got}
        assert by_event["serviceRefreshed"]["generation"] == 3
        assert by_event["itemsChanged"]["itemsAdded"] == 2
        assert by_event["itemsChanged"]["generation"] == 3  # the version this process serves
        await asyncio.sleep(0.05)
        assert sub.queue.empty()
        await hub.stop()

    asyncio.run(main())
