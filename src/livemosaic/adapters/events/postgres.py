"""The PostgreSQL event bus: LISTEN/NOTIFY between every server process on one database.

``publish`` delivers an event to this process's subscribers at once and, when the event
travels (:mod:`livemosaic.adapters.events.codec`), queues its JSON payload; a sender thread
sends it with ``pg_notify`` on its own connection. A listener thread keeps a second connection
in ``LISTEN`` and hands the events of *other* processes to the subscribers (its own come back
too and are skipped by their origin). PostgreSQL delivers notifications of one sender in
commit order, and only to sessions listening at that time.

A lost connection is retried with exponential backoff (``backoff_seconds`` doubling up to
``backoff_max_seconds``). Events sent while the listener was away are lost to it, so each time
it (re)connects — the first time included, since processes may have published before it
listened — it calls the ``on_gap`` callbacks: the subscribers read the stores once (one poll
of snapshot versions) and are up to date again. A sender whose queue overflowed (the database
away for long) announces a gap to every listener once it is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from typing import Final

import psycopg
from psycopg import sql

from livemosaic.adapters.events.codec import GapNotice, decode, encode, gap_payload
from livemosaic.core.events import Dispatcher, Event

log = logging.getLogger("livemosaic.events")

DEFAULT_CHANNEL = "livemosaic_events"
_STOP: Final = object()


def process_id() -> str:
    """A unique id of this bus instance (host, process, random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PostgresEventBus(Dispatcher):
    """Events between processes over PostgreSQL ``LISTEN``/``NOTIFY`` (psycopg 3)."""

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        backoff_seconds: float = 0.1,
        backoff_max_seconds: float = 5.0,
        queue_size: int = 10_000,
        connect_timeout_seconds: int = 5,
        keepalive_seconds: float = 5.0,
    ) -> None:
        super().__init__()
        if not channel or len(channel.encode()) > 63:
            raise ValueError("the event channel must be 1 to 63 bytes long")
        self.url = url
        self.channel = channel
        self.origin = process_id()
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        self.keepalive_seconds = keepalive_seconds
        self.listening = threading.Event()  # set while the listener's LISTEN is in place
        self.reconnects = 0  # connections of the listener after the first
        self._outbox: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._overflowed = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listen_conn: psycopg.Connection[tuple[object, ...]] | None = None

    @property
    def reaches_other_processes(self) -> bool:
        """Always: every process listening on the channel receives the events."""
        return True

    @property
    def connected(self) -> bool:
        """True while the listener's ``LISTEN`` is in place."""
        return self.listening.is_set()

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the listener and sender threads (once)."""
        if self._threads:
            return
        self._stop.clear()
        self._threads = [
            threading.Thread(
                target=self._listen_loop, name="livemosaic-events-listen", daemon=True
            ),
            threading.Thread(target=self._send_loop, name="livemosaic-events-send", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """Wait until the listener is connected and listening; False after ``timeout``."""
        return self.listening.wait(timeout)

    def close(self, drain_seconds: float = 2.0) -> None:
        """Send what is queued (at most ``drain_seconds``), then stop both threads."""
        if not self._threads:
            return
        with contextlib.suppress(queue.Full):
            self._outbox.put(_STOP, timeout=drain_seconds)
        sender = self._threads[1]
        sender.join(drain_seconds)
        self._stop.set()
        conn = self._listen_conn
        if conn is not None:
            with contextlib.suppress(Exception):  # wakes the listener out of its wait
                conn.cancel_safe(timeout=1.0)
        for thread in self._threads:
            thread.join(10.0)
        self._threads = []
        self.listening.clear()

    # -- publishing ------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """Deliver ``event`` here now; queue it for the other processes when it travels."""
        self.dispatch(event)
        try:
            payload = encode(event, self.origin)
        except ValueError:
            log.exception("an event too large for NOTIFY was not sent to other processes")
            self._overflowed = True
            return
        if payload is not None:
            self._enqueue(payload)

    def _enqueue(self, payload: str) -> None:
        while True:
            try:
                self._outbox.put_nowait(payload)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._outbox.get_nowait()  # the oldest goes; listeners get a gap
                self._overflowed = True

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=self.connect_timeout_seconds
        )

    def _send_loop(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        delay = self.backoff_seconds
        try:
            while True:
                item = self._outbox.get()
                if item is _STOP:
                    return
                while not self._stop.is_set():
                    try:
                        if conn is None or conn.closed:
                            conn = self._connect()
                        if self._overflowed:
                            self._overflowed = False
                            conn.execute(
                                "SELECT pg_notify(%s, %s)", (self.channel, gap_payload(self.origin))
                            )
                        conn.execute("SELECT pg_notify(%s, %s)", (self.channel, str(item)))
                        delay = self.backoff_seconds
                        break
                    except psycopg.Error as exc:
                        log.warning("sending an event failed (%s); retrying in %.1f s", exc, delay)
                        with contextlib.suppress(Exception):
                            if conn is not None:
                                conn.close()
                        conn = None
                        self._stop.wait(delay)
                        delay = min(delay * 2, self.backoff_max_seconds)
        finally:
            if conn is not None:
                conn.close()

    # -- listening ---------------------------------------------------------------------------
    def _listen_loop(self) -> None:
        delay = self.backoff_seconds
        connections = 0
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    self._listen_conn = conn
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    connections += 1
                    self.reconnects = connections - 1
                    self.listening.set()
                    delay = self.backoff_seconds
                    self.gap()  # whatever was sent while nobody listened: one poll
                    self._receive(conn)
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning(
                        "the event listener lost its connection (%s); reconnecting in %.1f s",
                        exc,
                        delay,
                    )
            finally:
                self.listening.clear()
                self._listen_conn = None
            self._stop.wait(delay)
            delay = min(delay * 2, self.backoff_max_seconds)

    def _receive(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        checked = time.monotonic()
        while not self._stop.is_set():
            for notify in conn.notifies(timeout=0.5):
                self._handle(notify.payload)
            if time.monotonic() - checked >= self.keepalive_seconds:
                conn.execute("SELECT 1")  # a dead connection raises here
                checked = time.monotonic()

    def _handle(self, payload: str) -> None:
        decoded = decode(payload)
        if decoded is None:
            log.debug("ignored an event payload this process does not know: %.200s", payload)
            return
        origin, event = decoded
        if origin == self.origin:
            return  # delivered here when it was published
        if isinstance(event, GapNotice):
            self.gap()
        else:
            self.dispatch(event)


__all__ = ["DEFAULT_CHANNEL", "PostgresEventBus", "process_id"]
