"""Change notifications: one message per snapshot swap, fanned out to subscribed clients.

:class:`NotificationHub` subscribes to the event bus (:mod:`livemosaic.core.events`):
:class:`ServiceRefreshed` (this process now serves a new snapshot: after a refresh here, or
following one of another process) and :class:`ItemsChanged` (from any process the bus
reaches). The bus calls the hub on whatever thread published (a job-runner worker, the
snapshot follower, the watcher); the hub builds and serialises the message there, once, and
hands it to the event loop with ``loop.call_soon_threadsafe``. Everything else — subscribers,
their queues, heartbeats — lives on the event loop thread only, so no lock is needed.

Each client (:class:`Subscriber`) has a bounded ``asyncio.Queue``. When it is full the oldest
message is dropped (a newer refresh supersedes it), the client is marked *lagging* and, with
its next delivery, gets a ``{"event": "lagging", "skipped": n}`` notice. A client that keeps
losing messages for longer than ``max_lag_seconds`` is disconnected. A slow client therefore costs the
server a fixed amount of memory and never delays the others: fan-out never awaits a client.

Each client keeps the :class:`Credentials` of its handshake (token and where it came from).
The ``authorize`` callable decides subscriptions; ``check_token`` says why a token is no
longer good (expired, revoked, bound elsewhere). A client whose token fails that check is
closed with :data:`CLOSE_TOKEN_INVALID` (4498): every ``token_check_seconds``, and before any
message of a secured service is queued for it, so a revoked token never receives one.

Messages are built by :mod:`livemosaic.rest.notify_messages`;
:mod:`livemosaic.rest.notify` turns subscribers into WebSocket connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from livemosaic.adapters.events import LocalEventBus
from livemosaic.core.events import Event, EventBus, ItemsChanged, ServiceRefreshed
from livemosaic.core.follow import announce_swaps
from livemosaic.core.models import ServiceSnapshot
from livemosaic.core.registry import ServiceRegistry, service_key
from livemosaic.errors import InvalidParameter, LimitExceeded
from livemosaic.rest.notify_clients import (
    CLOSE_TOKEN_INVALID,
    Authorizer,
    Credentials,
    HubStats,
    Subscriber,
    SubscribeResult,
    TokenCheck,
    public_only,
)
from livemosaic.rest.notify_messages import (
    CODE_BAD_NAME,
    CODE_NOT_FOUND,
    denied_message,
    dumps,
    error_message,
    now_ms,
    parse_service_name,
    refresh_message,
    wire_name,
)

log = logging.getLogger("livemosaic.notify")


class NotificationHub:
    """Fans out ``serviceRefreshed`` messages and heartbeats to subscribed clients.

    ``events`` is the bus the hub follows; without one, the hub follows ``registry``'s swaps
    through an in-process bus of its own.
    """

    def __init__(
        self,
        registry: ServiceRegistry,
        *,
        events: EventBus | None = None,
        authorize: Authorizer | None = None,
        check_token: TokenCheck | None = None,
        token_check_seconds: float = 10.0,
        queue_size: int = 32,
        heartbeat_seconds: float = 15.0,
        max_lag_seconds: float = 30.0,
        max_clients: int = 10_000,
        max_services: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if queue_size < 1:
            raise InvalidParameter("queue_size", "must be at least 1.")
        if heartbeat_seconds <= 0 or max_lag_seconds <= 0 or token_check_seconds <= 0:
            raise InvalidParameter(
                "heartbeat_seconds", "max_lag_seconds and token_check_seconds must be positive."
            )
        self.registry = registry
        if events is None:
            events = LocalEventBus()
            announce_swaps(registry, events)
        self.events = events
        self.authorize: Authorizer = authorize or public_only(registry)
        self.check_token: TokenCheck = check_token or _no_token_check
        self.token_check_seconds = token_check_seconds
        self.queue_size = queue_size
        self.heartbeat_seconds = heartbeat_seconds
        self.max_lag_seconds = max_lag_seconds
        self.max_clients = max_clients
        self.max_services = max_services
        self.stats = HubStats()
        self._clock = clock
        self._ids = itertools.count(1)
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._token_checks: asyncio.Task[None] | None = None
        self._attached = False
        self._observers: list[Callable[[str, int], None]] = []

    # -- life cycle (event loop thread) ---------------------------------------------------
    def start(self) -> None:
        """Bind to the running event loop, subscribe to the bus and start heartbeats."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._heartbeat is not None:
            return
        self._loop = loop
        if not self._attached:
            self.events.subscribe(self.on_event, ServiceRefreshed, ItemsChanged)
            self._attached = True
        self._heartbeat = loop.create_task(self._heartbeat_loop(), name="livemosaic-notify")
        self._token_checks = loop.create_task(self._token_loop(), name="livemosaic-notify-tokens")

    async def stop(self) -> None:
        """Disconnect every client and stop the heartbeat task."""
        self._loop = None
        tasks = (self._heartbeat, self._token_checks)
        self._heartbeat = self._token_checks = None
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for sub in list(self._subscribers):
            self._close(sub, 1001, "the server is shutting down")
        self._subscribers.clear()
        self.stats.clients = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the hub is bound to (None before start and after stop)."""
        return self._loop

    @property
    def running(self) -> bool:
        """True once bound to an event loop (after :meth:`start` or the first connection)."""
        return self._loop is not None

    # -- clients (event loop thread) ---------------------------------------------------------
    def connect(self, credentials: Credentials | str | None = None) -> Subscriber:
        """Register a new client (LimitExceeded when ``max_clients`` are connected).

        ``credentials`` may be a bare token (no caller) or None (anonymous). The token is
        not checked here: the web layer refuses the handshake when :meth:`token_problem`
        names one.
        """
        if not isinstance(credentials, Credentials):
            credentials = Credentials(credentials)
        if self._loop is None:
            self.start()
        if len(self._subscribers) >= self.max_clients:
            raise LimitExceeded(
                f"The server already has {self.max_clients} notification clients connected.",
                next_step="Retry later.",
            )
        sub = Subscriber(next(self._ids), credentials, asyncio.Queue(maxsize=self.queue_size))
        self._subscribers.add(sub)
        self.stats.clients = len(self._subscribers)
        return sub

    def disconnect(self, sub: Subscriber) -> None:
        """Forget a client (its connection ended)."""
        self._subscribers.discard(sub)
        sub.closed.set()
        self.stats.clients = len(self._subscribers)

    def subscribe(self, sub: Subscriber, names: Sequence[object]) -> SubscribeResult:
        """Follow services by wire name; refused ones come back as error events."""
        services: list[str] = []
        versions: dict[str, int] = {}
        errors: list[dict[str, Any]] = []
        for raw in names:
            try:
                folder, name = parse_service_name(raw)
            except InvalidParameter as exc:
                errors.append(error_message(CODE_BAD_NAME, exc.reason, raw))
                continue
            snapshot = self.registry.find(folder, name)
            label = f"{folder}/{name}" if folder else name
            if snapshot is None:
                message = f"Service '{label}.ImageServer' does not exist."
                errors.append(error_message(CODE_NOT_FOUND, message, raw))
                continue
            key = service_key(snapshot.definition.folder, snapshot.definition.name)
            if not self._allowed(sub.credentials, key):
                errors.append(denied_message(sub.token, wire_name(snapshot), raw))
                continue
            if key not in sub.services and len(sub.services) >= self.max_services:
                message = f"A connection may follow at most {self.max_services} services."
                errors.append(error_message(CODE_BAD_NAME, message, raw))
                continue
            sub.services.add(key)
            services.append(wire_name(snapshot))
            versions[wire_name(snapshot)] = snapshot.version
        return SubscribeResult(services, versions, errors)

    def unsubscribe(self, sub: Subscriber, names: Sequence[object]) -> SubscribeResult:
        """Stop following services (unknown or not followed names are ignored)."""
        services: list[str] = []
        errors: list[dict[str, Any]] = []
        for raw in names:
            try:
                folder, name = parse_service_name(raw)
            except InvalidParameter as exc:
                errors.append(error_message(CODE_BAD_NAME, exc.reason, raw))
                continue
            key = service_key(folder, name)
            if key in sub.services:
                sub.services.discard(key)
                snapshot = self.registry.find(folder, name)
                services.append(wire_name(snapshot) if snapshot else f"{folder}/{name}".lstrip("/"))
        return SubscribeResult(services, {}, errors)

    def send(self, sub: Subscriber, message: dict[str, Any]) -> None:
        """Queue a reply for one client (same bounded queue as notifications)."""
        self._offer(sub, dumps(message))

    def subscribers(self) -> list[Subscriber]:
        """The connected clients (a copy)."""
        return list(self._subscribers)

    def observe(self, observer: Callable[[str, int], None]) -> None:
        """Call ``observer(service_key, version)`` on the loop after each fan-out (benchmarks)."""
        self._observers.append(observer)

    # -- events (any thread) ----------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Bus subscriber: a swap or an items change becomes a message to the clients."""
        if isinstance(event, ServiceRefreshed):
            self.on_swap(event.old, event.new)
        elif isinstance(event, ItemsChanged):
            self.on_items_changed(event.folder, event.name, event.added, event.removed)

    def on_swap(self, old: ServiceSnapshot | None, new: ServiceSnapshot) -> None:
        """A new snapshot is served: build the message here, fan it out on the event loop."""
        loop = self._loop
        if loop is None or not self._subscribers:
            return
        try:
            text = dumps(refresh_message(old, new))
        except Exception:  # a listener must never break a swap; the cause goes to the log
            log.exception("building the notification for %s failed", new.qualified_name)
            return
        key = service_key(new.definition.folder, new.definition.name)
        recheck = old is not None and old.definition != new.definition
        with contextlib.suppress(RuntimeError):  # the loop closed while we were building
            loop.call_soon_threadsafe(self._fanout, key, new.version, text, recheck)

    def on_items_changed(self, folder: str, name: str, added: int, removed: int) -> None:
        """Tell subscribers that items were added or removed without a summary change.

        A file inside the published extent (and time extent) needs no refresh, but open
        maps should redraw it; this sends ``itemsChanged``. Safe from any thread.
        """
        loop = self._loop
        if loop is None or not self._subscribers or (added <= 0 and removed <= 0):
            return
        snapshot = self.registry.find(folder, name)
        if snapshot is None:
            return
        text = dumps(
            {
                "event": "itemsChanged",
                "service": wire_name(snapshot),
                "generation": snapshot.version,
                "itemsAdded": added,
                "itemsRemoved": removed,
                "time": int(time.time() * 1000),
            }
        )
        key = service_key(snapshot.definition.folder, snapshot.definition.name)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._fanout, key, snapshot.version, text, False)

    def _fanout(self, key: str, version: int, text: str, recheck: bool) -> None:
        self.stats.published += 1
        snapshot = self.registry.find(*_split_key(key))
        secured = snapshot is None or snapshot.definition.private
        for sub in list(self._subscribers):
            if key not in sub.services:
                continue
            if secured and self._token_gone(sub):  # never deliver a secured service on it
                continue
            if recheck and not self._allowed(sub.credentials, key):
                sub.services.discard(key)
                snapshot = self.registry.find(*_split_key(key))
                name = wire_name(snapshot) if snapshot else key
                denied = denied_message(sub.token, name, name)
                denied["message"] += " The subscription was cancelled."
                self._offer(sub, dumps(denied))
                continue
            self._offer(sub, text)
        for observer in self._observers:
            observer(key, version)

    # -- queues and heartbeats (event loop thread) -------------------------------------------
    def _offer(self, sub: Subscriber, text: str) -> None:
        if sub.closed.is_set():
            return
        try:
            sub.queue.put_nowait(text)
        except asyncio.QueueFull:
            sub.queue.get_nowait()  # the oldest message is the stalest: drop it
            sub.dropped += 1
            sub.skipped += 1
            self.stats.dropped += 1
            now = self._clock()
            if sub.lag_since is None or now - sub.last_drop > self.max_lag_seconds:
                sub.lag_since = now  # a new episode of lagging
            sub.last_drop = now
            if now - sub.lag_since > self.max_lag_seconds:
                self._evict(sub)
                return
            sub.queue.put_nowait(text)
        self.stats.queued += 1

    def _evict(self, sub: Subscriber) -> None:
        self.stats.evicted += 1
        reason = f"too slow: {sub.dropped} messages dropped"
        log.warning("notification client %d disconnected (%s)", sub.id, reason)
        self._close(sub, 1013, reason)
        self._subscribers.discard(sub)
        self.stats.clients = len(self._subscribers)

    def _close(self, sub: Subscriber, code: int, reason: str) -> None:
        sub.close_code = code
        sub.close_reason = reason
        sub.closed.set()

    def heartbeat(self) -> None:
        """Send a heartbeat to every idle client and disconnect clients lagging too long.

        A client lags too long when it has been losing messages for more than
        ``max_lag_seconds`` and lost one within the last ``max_lag_seconds``; one that stopped
        losing messages is no longer lagging.
        """
        now = self._clock()
        text = dumps({"event": "heartbeat", "time": now_ms()})
        limit = self.max_lag_seconds
        for sub in list(self._subscribers):
            if sub.lag_since is not None and now - sub.last_drop > limit:
                sub.lag_since = None
            if sub.lag_since is not None and now - sub.lag_since > limit:
                self._evict(sub)
            elif sub.queue.empty():
                self._offer(sub, text)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                self.heartbeat()
            except Exception:  # the heartbeat must never stop; the cause goes to the log
                log.exception("notification heartbeat failed")

    def _allowed(self, credentials: Credentials, key: str) -> bool:
        try:
            return bool(self.authorize(credentials, key))
        except Exception:  # an authorizer failure refuses, it never breaks the connection
            log.exception("authorizing a notification subscription failed")
            return False

    # -- tokens (event loop thread) ------------------------------------------------------------
    def token_problem(self, credentials: Credentials) -> str | None:
        """Why ``credentials`` carry a token that is not good now (None when good or absent)."""
        if credentials.token is None:
            return None
        try:
            return self.check_token(credentials)
        except Exception:  # a failing check refuses: the token is not known to be good
            log.exception("checking a notification client's token failed")
            return "the token could not be checked"

    def _token_gone(self, sub: Subscriber) -> bool:
        """Close ``sub`` (4498) if its token expired or was revoked; True when closed."""
        if sub.closed.is_set():
            return True
        problem = self.token_problem(sub.credentials)
        if problem is None:
            return False
        self.stats.expired += 1
        log.info("notification client %d disconnected: %s", sub.id, problem)
        self._close(sub, CLOSE_TOKEN_INVALID, problem)
        self._subscribers.discard(sub)
        self.stats.clients = len(self._subscribers)
        return True

    def check_tokens(self) -> int:
        """Close every client whose token expired or was revoked; returns how many."""
        return sum(self._token_gone(sub) for sub in list(self._subscribers) if sub.token)

    async def _token_loop(self) -> None:
        while True:
            await asyncio.sleep(self.token_check_seconds)
            try:
                self.check_tokens()
            except Exception:  # the checks must never stop; the cause goes to the log
                log.exception("checking notification tokens failed")


def _no_token_check(credentials: Credentials) -> str | None:
    return None


def _split_key(key: str) -> tuple[str, str]:
    folder, _, name = key.rpartition("/")
    return folder, name


__all__ = [
    "CLOSE_TOKEN_INVALID",
    "Authorizer",
    "Credentials",
    "HubStats",
    "NotificationHub",
    "SubscribeResult",
    "Subscriber",
    "TokenCheck",
    "dumps",
    "now_ms",
    "parse_service_name",
    "public_only",
    "refresh_message",
    "wire_name",
]
