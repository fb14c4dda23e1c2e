"""Domain events and the event bus port.

Core publishes what happened; adapters (the notification WebSocket, the snapshot follower of
other server processes) subscribe. Events are frozen dataclasses:

* :class:`SnapshotInstalled` — a new snapshot of a service was stored; the process that stored
  it already serves it. Other processes load it (:mod:`livemosaic.core.follow`).
* :class:`ServiceRemoved` — a service was deleted.
* :class:`ItemsChanged` — items were added or removed without a change of the published
  summary (no refresh needed, yet open maps should redraw).
* :class:`ServiceRefreshed` — *this process* now serves ``new`` in place of ``old`` (after a
  refresh, an edit, or following another process). Every process announces its own swaps, so
  this event never travels between processes; it carries the snapshots themselves.

An :class:`EventBus` delivers each event once to every subscriber of every process it reaches
(the publishing process included, synchronously on the publisher's thread; other processes on
the bus's own thread). ``publish`` never blocks on a network and never raises because of a
subscriber. Handlers are plain callables; :func:`on_loop` makes one run on an asyncio loop, so
both threads and coroutines can follow the bus. When a bus may have missed events of other
processes (a lost connection), it calls the ``on_gap`` callbacks once it is back, and the
subscribers catch up by reading the stores (one poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from livemosaic.core.models import ServiceSnapshot

log = logging.getLogger("livemosaic.events")


@dataclass(frozen=True, slots=True)
class SnapshotInstalled:
    """Snapshot ``version`` of service ``folder/name`` was stored and is served by its publisher."""

    crosses_processes: ClassVar[bool] = True
    folder: str
    name: str
    version: int


@dataclass(frozen=True, slots=True)
class ServiceRemoved:
    """Service ``folder/name`` was deleted."""

    crosses_processes: ClassVar[bool] = True
    folder: str
    name: str


@dataclass(frozen=True, slots=True)
class ItemsChanged:
    """Items of service ``folder/name`` were added or removed; its summary did not change."""

    crosses_processes: ClassVar[bool] = True
    folder: str
    name: str
    added: int
    removed: int


@dataclass(frozen=True, slots=True)
class ServiceRefreshed:
    """This process now serves ``new`` in place of ``old`` (None: newly published)."""

    crosses_processes: ClassVar[bool] = False
    old: ServiceSnapshot | None
    new: ServiceSnapshot

    @property
    def definition_changed(self) -> bool:
        """True when the service definition (properties, state) changed with the swap."""
        return self.old is not None and self.old.definition != self.new.definition


Event = SnapshotInstalled | ServiceRemoved | ItemsChanged | ServiceRefreshed
EventType = type[SnapshotInstalled | ServiceRemoved | ItemsChanged | ServiceRefreshed]
Handler = Callable[[Event], None]
Unsubscribe = Callable[[], None]


class EventBus(Protocol):
    """Publish domain events; subscribe to them in this process."""

    @property
    def reaches_other_processes(self) -> bool:
        """True when events published here reach other server processes (and back)."""
        ...

    @property
    def connected(self) -> bool:
        """True while events of other processes arrive (never for an in-process bus): when
        False, whoever must follow other processes reads the stores instead (polling)."""
        ...

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to the subscribers here and, if it crosses processes, elsewhere."""
        ...

    def subscribe(self, handler: Handler, *kinds: EventType) -> Unsubscribe:
        """Call ``handler(event)`` for events of ``kinds`` (every kind when none is named)."""
        ...

    def on_gap(self, callback: Callable[[], object]) -> Unsubscribe:
        """Call ``callback()`` once events of other processes may have been missed."""
        ...

    def start(self) -> None:
        """Begin receiving events of other processes (no-op for an in-process bus)."""
        ...

    def close(self) -> None:
        """Stop receiving and sending; later publishes only reach this process."""
        ...


class Dispatcher:
    """Subscriptions and in-process delivery, shared by every bus implementation.

    Delivery runs the handlers in subscription order on the calling thread; a failing handler
    is logged and never stops the others nor the publisher.
    """

    def __init__(self) -> None:
        self._handlers: list[tuple[Handler, tuple[EventType, ...]]] = []
        self._gap_callbacks: list[Callable[[], object]] = []
        self._lock = threading.Lock()

    def subscribe(self, handler: Handler, *kinds: EventType) -> Unsubscribe:
        """Call ``handler(event)`` for events of ``kinds`` (every kind when none is named)."""
        entry = (handler, tuple(kinds))
        with self._lock:
            self._handlers = [*self._handlers, entry]

        def unsubscribe() -> None:
            with self._lock:
                self._handlers = [h for h in self._handlers if h is not entry]

        return unsubscribe

    def on_gap(self, callback: Callable[[], object]) -> Unsubscribe:
        """Call ``callback()`` once events of other processes may have been missed."""
        with self._lock:
            self._gap_callbacks = [*self._gap_callbacks, callback]

        def remove() -> None:
            with self._lock:
                self._gap_callbacks = [c for c in self._gap_callbacks if c is not callback]

        return remove

    def dispatch(self, event: Event) -> None:
        """Run the matching handlers now, on this thread."""
        for handler, kinds in self._handlers:
            if kinds and not isinstance(event, kinds):
                continue
            try:
                handler(event)
            except Exception:  # a subscriber must never break a publisher
                log.exception("handling %s failed", type(event).__name__)

    def gap(self) -> None:
        """Run the ``on_gap`` callbacks now, on this thread."""
        for callback in self._gap_callbacks:
            try:
                callback()
            except Exception:  # the next gap tries again; the cause goes to the log
                log.exception("catching up after missed events failed")


def on_loop(loop: asyncio.AbstractEventLoop, handler: Handler) -> Handler:
    """A handler that runs ``handler`` on ``loop`` (for subscribers living on an event loop).

    Safe from any thread; events arriving after the loop closed are dropped.
    """

    def deliver(event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed
            loop.call_soon_threadsafe(handler, event)

    return deliver


__all__ = [
    "Dispatcher",
    "Event",
    "EventBus",
    "EventType",
    "Handler",
    "ItemsChanged",
    "ServiceRefreshed",
    "ServiceRemoved",
    "SnapshotInstalled",
    "Unsubscribe",
    "on_loop",
]
