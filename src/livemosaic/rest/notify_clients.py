"""The clients of the notification hub: their credentials, queues and counters.

A :class:`Subscriber` is one connected client with its bounded queue of message texts; the
hub (:mod:`livemosaic.rest.notify_hub`) fills the queues and the WebSocket endpoint
(:mod:`livemosaic.rest.notify`) empties them. :class:`Credentials` are what the client
presented at the handshake; an :data:`Authorizer` decides its subscriptions and a
:data:`TokenCheck` says when its token stopped being good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livemosaic.core.registry import ServiceRegistry
from livemosaic.rest.notify_messages import dumps, now_ms

CLOSE_TOKEN_INVALID = 4498
"""Close code of a connection whose token expired or was revoked (ArcGIS's 498, in the
4000-4999 range WebSocket leaves to applications)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented at the handshake: its token (None = anonymous) and where it
    connected from (``caller``: the web layer's record of address and Origin/Referer, opaque
    here), so every later check applies the same IP and referer binding."""

    token: str | None = None
    caller: object = None


Authorizer = Callable[[Credentials, str], bool]
"""``authorize(credentials, service_key)``: may this client follow this service?"""

TokenCheck = Callable[[Credentials], str | None]
"""``check(credentials)``: why the client's token is not good now (None while it is, and
for anonymous clients)."""


def public_only(registry: ServiceRegistry) -> Authorizer:
    """The default authorizer: anyone may follow a service that is not private; nobody else."""

    def authorize(credentials: Credentials, key: str) -> bool:
        folder, _, name = key.rpartition("/")
        snapshot = registry.find(folder, name)
        return snapshot is not None and not snapshot.definition.private

    return authorize


@dataclass(eq=False)
class Subscriber:
    """One connected client: its token, subscriptions and bounded outgoing queue."""

    id: int
    credentials: Credentials
    queue: asyncio.Queue[str]
    services: set[str] = field(default_factory=set)
    dropped: int = 0  # messages dropped for this client since it connected
    skipped: int = 0  # dropped since the last delivery (announced with the next one)
    lag_since: float | None = None  # monotonic time the current lag started
    last_drop: float = 0.0  # monotonic time of the latest drop
    delivered: int = 0
    close_code: int = 1000
    close_reason: str = ""
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def token(self) -> str | None:
        """The token presented at the handshake (None = anonymous)."""
        return self.credentials.token

    @property
    def lagging(self) -> bool:
        """True while messages are being dropped because the client reads too slowly."""
        return self.lag_since is not None

    async def next(self) -> str:
        """The next message text to send (a lagging notice first when messages were skipped)."""
        if self.skipped:
            count, self.skipped = self.skipped, 0
            return dumps({"event": "lagging", "skipped": count, "time": now_ms()})
        text = await self.queue.get()
        self.delivered += 1
        if self.queue.empty():
            self.lag_since = None  # caught up
        return text

    async def wait_closed(self) -> None:
        """Wait until the hub disconnects this client (too slow, or the server stops)."""
        await self.closed.wait()


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """What a subscribe or unsubscribe did: canonical names, versions and per-service errors."""

    services: list[str]
    versions: dict[str, int]
    errors: list[dict[str, Any]]


@dataclass(slots=True)
class HubStats:
    """Counters for monitoring and benchmarks."""

    clients: int = 0
    published: int = 0  # serviceRefreshed messages built
    queued: int = 0  # message copies put into client queues
    dropped: int = 0  # message copies dropped from full queues
    evicted: int = 0  # clients disconnected for lagging
    expired: int = 0  # clients disconnected because their token expired or was revoked


__all__ = [
    "CLOSE_TOKEN_INVALID",
    "Authorizer",
    "Credentials",
    "HubStats",
    "SubscribeResult",
    "Subscriber",
    "TokenCheck",
    "public_only",
]
