"""One contract for every event bus: in-process and PostgreSQL LISTEN/NOTIFY (real database).

Every bus delivers an event once to each matching subscriber of the publishing process, at
once and on the publisher's thread. A bus that reaches other processes also delivers the
travelling events there (never ``ServiceRefreshed``, which each process announces itself),
and after a lost connection reconnects and calls its ``on_gap`` callbacks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from livemosaic.adapters.events import LocalEventBus, open_event_bus
from livemosaic.adapters.events.codec import GapNotice, decode, encode, gap_payload
from livemosaic.core.events import (
    Event,
    EventBus,
    ItemsChanged,
    ServiceRefreshed,
    ServiceRemoved,
    SnapshotInstalled,
    on_loop,
)
from livemosaic.core.models import (
    DatasetSummary,
    MosaicDataset,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
)
from livemosaic.errors import InvalidParameter
from tests.pgbus import postgres_or_skip, unique_channel

KINDS = ["local", "postgresql"]
WAIT = 10.0  # seconds a cross-process event may take at most on a loaded machine


def snapshot(version: int = 1) -> ServiceSnapshot:
    return ServiceSnapshot(
        definition=ServiceDefinition("sst", "sst", folder="Ocean"),
        dataset=MosaicDataset("sst", "EPSG:4326"),
        summary=DatasetSummary(item_count=version),
        spatial_reference=SpatialRef.from_epsg(4326),
        version=version,
        published_at=0,
    )


class Recorder:
    """Collects events (and the threads they arrived on) and waits for them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self.cond:
            self.events.append(event)
            self.threads.append(threading.current_thread().name)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.events), timeout)


@pytest.fixture
def make_bus() -> Iterator[Callable[[str, str], EventBus]]:
    """Build started buses of a kind (a PostgreSQL bus per call shares ``channel``)."""
    made: list[EventBus] = []

    def make(kind: str, channel: str) -> EventBus:
        spec = "local" if kind == "local" else postgres_or_skip()
        bus = open_event_bus(spec, catalog_url="sqlite:///unused.db", channel=channel)
        bus.start()
        made.append(bus)
        wait = getattr(bus, "wait_listening", None)
        if wait is not None:
            assert wait(WAIT), "the listener did not connect"
        assert bus.connected == bus.reaches_other_processes  # local: never; else: listening
        return bus

    yield make
    for bus in made:
        bus.close()


@pytest.mark.parametrize("kind", KINDS)
def test_subscribers_here_get_each_event_once_at_once(
    kind: str, make_bus: Callable[[str, str], EventBus]
) -> None:
    bus = make_bus(kind, unique_channel())
    everything, snapshots = Recorder(), Recorder()
    bus.subscribe(everything)
    bus.subscribe(snapshots, SnapshotInstalled, ServiceRemoved)
    sent: list[Event] = [
        SnapshotInstalled("Ocean", "sst", 2),
        ItemsChanged("Ocean", "sst", 3, 1),
        ServiceRefreshed(snapshot(1), snapshot(2)),
        ServiceRemoved("Ocean", "sst"),
    ]
    for event in sent:
        bus.publish(event)
    # delivered synchronously on the publishing thread, in order, filtered by kind
    assert everything.events == sent
    assert set(everything.threads) == {threading.current_thread().name}
    assert snapshots.events == [sent[0], sent[3]]
    time.sleep(0.3)  # nothing comes back later (a process never hears its own events twice)
    assert everything.events == sent


@pytest.mark.parametrize("kind", KINDS)
def test_unsubscribe_and_failing_handlers(
    kind: str, make_bus: Callable[[str, str], EventBus]
) -> None:
    bus = make_bus(kind, unique_channel())
    first, second = Recorder(), Recorder()

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    stop_first = bus.subscribe(first)
    bus.subscribe(broken)
    bus.subscribe(second)
    bus.publish(ItemsChanged("", "a", 1, 0))  # the broken handler does not stop the others
    stop_first()
    bus.publish(ItemsChanged("", "b", 1, 0))
    assert [e.name for e in first.events if isinstance(e, ItemsChanged)] == ["a"]
    assert [e.name for e in second.events if isinstance(e, ItemsChanged)] == ["a", "b"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_handler_can_run_on_an_event_loop(
    kind: str, make_bus: Callable[[str, str], EventBus]
) -> None:
    bus = make_bus(kind, unique_channel())

    async def scenario() -> tuple[Event, str]:
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[tuple[Event, str]] = loop.create_future()

        def handler(event: Event) -> None:
            arrived.set_result((event, threading.current_thread().name))

        bus.subscribe(on_loop(loop, handler), SnapshotInstalled)
        await asyncio.to_thread(bus.publish, SnapshotInstalled("", "x", 5))  # another thread
        return await asyncio.wait_for(arrived, WAIT)

    event, thread = asyncio.run(scenario())
    assert event == SnapshotInstalled("", "x", 5)
    assert thread == threading.main_thread().name


@pytest.mark.parametrize("kind", KINDS)
def test_travelling_events_reach_other_processes_when_the_bus_does(
    kind: str, make_bus: Callable[[str, str], EventBus]
) -> None:
    channel = unique_channel()
    a, b = make_bus(kind, channel), make_bus(kind, channel)
    heard = Recorder()
    b.subscribe(heard)
    a.publish(ServiceRefreshed(None, snapshot(1)))  # stays in A: each process announces its own
    a.publish(SnapshotInstalled("Ocean", "sst", 7))
    a.publish(ItemsChanged("Ocean", "sst", 2, 0))
    a.publish(ServiceRemoved("Ocean", "sst"))
    expected: list[Event] = [
        SnapshotInstalled("Ocean", "sst", 7),
        ItemsChanged("Ocean", "sst", 2, 0),
        ServiceRemoved("Ocean", "sst"),
    ]
    if not b.reaches_other_processes:
        time.sleep(0.3)
        assert heard.events == []
        return
    assert heard.wait_for(lambda events: len(events) >= 3), heard.events
    time.sleep(0.3)
    assert heard.events == expected  # in order, once, and no ServiceRefreshed
    assert all(name == "livemosaic-events-listen" for name in heard.threads)


@pytest.mark.parametrize("kind", KINDS)
def test_after_a_lost_connection_the_bus_reconnects_and_reports_a_gap(
    kind: str, make_bus: Callable[[str, str], EventBus]
) -> None:
    channel = unique_channel()
    bus = make_bus(kind, channel)
    gaps: list[float] = []
    bus.on_gap(lambda: gaps.append(time.monotonic()))
    if not bus.reaches_other_processes:
        assert gaps == []  # an in-process bus misses nothing
        return
    import psycopg

    other = make_bus(kind, channel)
    heard = Recorder()
    bus.subscribe(heard)
    url = postgres_or_skip()
    with psycopg.connect(url, autocommit=True) as admin:  # kill the listener's session
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query ILIKE %s AND pid <> pg_backend_pid()",
            (f'%LISTEN "{channel}"%',),
        ).fetchall()
    assert killed, "no listening session found"
    disconnected = False  # seen, at least for a moment, while it reconnects
    deadline = time.monotonic() + WAIT
    while not (disconnected := not bus.connected) and time.monotonic() < deadline and not gaps:
        time.sleep(0.001)
    deadline = time.monotonic() + WAIT
    while not gaps and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gaps, "no catch-up after the reconnection"
    assert disconnected, "the bus never said it was disconnected"
    assert getattr(bus, "wait_listening", lambda t: True)(WAIT) and bus.connected
    assert getattr(bus, "reconnects", 0) >= 1
    other.publish(SnapshotInstalled("", "after", 2))  # listening again
    assert heard.wait_for(lambda events: SnapshotInstalled("", "after", 2) in events)


def test_a_sender_that_lost_events_tells_the_listeners() -> None:
    url = postgres_or_skip()
    from livemosaic.adapters.events.postgres import PostgresEventBus

    channel = unique_channel()
    sender = PostgresEventBus(url, channel=channel, queue_size=1)
    listener = PostgresEventBus(url, channel=channel)
    listener.start()
    try:
        assert listener.wait_listening(WAIT)
        gaps: list[int] = []
        listener.on_gap(lambda: gaps.append(1))
        heard = Recorder()
        listener.subscribe(heard)
        for version in (1, 2, 3):  # the sender is not started: its queue of one overflows
            sender.publish(SnapshotInstalled("", "s", version))
        sender.start()
        assert heard.wait_for(lambda events: len(events) >= 1)
        deadline = time.monotonic() + WAIT
        while not gaps and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gaps == [1]
        assert heard.events == [SnapshotInstalled("", "s", 3)]  # the newest was kept
    finally:
        sender.close()
        listener.close()


# -- the payload codec and the choice of bus ----------------------------------------------------
def test_payloads_round_trip_and_bad_ones_are_ignored() -> None:
    for event in (
        SnapshotInstalled("Ocean", "sst", 3),
        ServiceRemoved("", "x"),
        ItemsChanged("F", "n", 1, 2),
    ):
        text = encode(event, "me")
        assert text is not None
        assert decode(text) == ("me", event)
    assert encode(ServiceRefreshed(None, snapshot()), "me") is None
    assert decode(gap_payload("you")) == ("you", GapNotice())
    bad: list[Any] = [
        "not json",
        "[1]",
        '{"type": "SnapshotInstalled", "folder": "", "name": "x", "version": 1}',  # no origin
        '{"type": "Unknown", "origin": "o"}',
        '{"type": "SnapshotInstalled", "origin": "o", "folder": "", "name": "x", "version": "1"}',
        '{"type": "ItemsChanged", "origin": "o", "folder": "", "name": "x", "added": true}',
    ]
    for payload in bad:
        assert decode(payload) is None, payload


def test_the_bus_follows_the_catalog_unless_named() -> None:
    sqlite = "sqlite:///x/catalog.db"
    pg = "postgresql://postgres@127.0.0.1:5432/test"
    assert isinstance(open_event_bus("", catalog_url=sqlite, channel="c"), LocalEventBus)
    assert isinstance(open_event_bus("LOCAL", catalog_url=pg, channel="c"), LocalEventBus)
    chosen = open_event_bus("", catalog_url=pg, channel="c")
    assert chosen.reaches_other_processes and getattr(chosen, "url", None) == pg
    named = open_event_bus(pg, catalog_url=sqlite, channel="c")
    assert named.reaches_other_processes
    with pytest.raises(InvalidParameter):
        open_event_bus("redis://x", catalog_url=sqlite, channel="c")
