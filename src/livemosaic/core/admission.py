"""The admission gate: one memory budget and a number of slots shared by a process's requests.

Each request asks for its estimated bytes (:mod:`livemosaic.core.budget`) before it touches a
raster. It is admitted at once when its bytes fit the room left and a slot is free; otherwise
it waits in a first-come, first-served queue. The queue is bounded twice: at most
``max_waiting`` requests wait (one more is refused at once), and none waits longer than
``wait_seconds``. A refused request gets :class:`~livemosaic.errors.ServerBusy` (HTTP 503 with
``Retry-After``): waiting is never a server error. The bytes return when the work itself ends
(:meth:`Permit.release`, called when the worker thread finishes, not when the client stops
waiting), so the budget always covers what is really allocated; a finished request that
answers with a large body keeps that body's bytes (:meth:`Permit.keep`) until it is sent.

The gate belongs to the event loop that first uses it; ``release`` may be called from any
thread. Several server processes each have their own gate (see docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field

from livemosaic.core.budget import mib
from livemosaic.errors import ServerBusy


@dataclass(slots=True)
class Permit:
    """Bytes and a slot held by one admitted request until :meth:`release`."""

    gate: MemoryGate
    weight: int
    slot: bool = True  # still holding a slot
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def released(self) -> bool:
        """True once nothing is held any more."""
        return not self.slot and self.weight == 0

    def keep(self, weight: int) -> None:
        """The work is done: give the slot and all but ``weight`` bytes back now (the answer
        that stays until it is sent); :meth:`release` gives back the rest."""
        with self.lock:
            keep = min(max(int(weight), 0), self.weight)
            freed, slot = self.weight - keep, self.slot
            self.weight, self.slot = keep, False
        if freed or slot:
            self.gate._give_back(freed, slot)

    def release(self) -> None:
        """Give everything back (later calls do nothing)."""
        with self.lock:
            freed, slot = self.weight, self.slot
            self.weight, self.slot = 0, False
        if freed or slot:
            self.gate._give_back(freed, slot)


class MemoryGate:
    """A weighted semaphore over ``budget_bytes`` and ``slots`` with a bounded queue."""

    def __init__(
        self,
        budget_bytes: int,
        slots: int,
        *,
        max_waiting: int,
        wait_seconds: float,
        retry_after_seconds: int,
    ) -> None:
        self.budget = max(1, int(budget_bytes))
        self.slots = max(1, int(slots))
        self.max_waiting = max(0, int(max_waiting))
        self.wait_seconds = max(0.0, float(wait_seconds))
        self.retry_after = max(1, int(retry_after_seconds))
        self.in_use = 0  # bytes held by admitted requests
        self.running = 0  # admitted requests
        self.peak_in_use = 0
        self.admitted = 0
        self.refused = 0
        self._waiters: deque[tuple[int, asyncio.Future[Permit]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        """Requests in the queue."""
        return len(self._waiters)

    def _fits(self, weight: int) -> bool:
        return self.running < self.slots and self.in_use + weight <= self.budget

    def _admit(self, weight: int) -> Permit:
        self.in_use += weight
        self.running += 1
        self.admitted += 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)
        return Permit(self, weight)

    def _busy(self, why: str) -> ServerBusy:
        self.refused += 1
        return ServerBusy(
            f"The server is busy: {why}.",
            retry_after=self.retry_after,
            next_step=f"Retry after {self.retry_after} seconds, or ask for a smaller image.",
        )

    async def acquire(self, weight: int) -> Permit:
        """Wait (bounded) until ``weight`` bytes and a slot are free; ServerBusy otherwise.

        A weight above the whole budget is taken as the whole budget (it then runs alone).
        """
        self._loop = self._loop or asyncio.get_running_loop()
        weight = min(max(int(weight), 0), self.budget)
        if not self._waiters and self._fits(weight):
            return self._admit(weight)
        if len(self._waiters) >= self.max_waiting or self.wait_seconds <= 0:
            raise self._busy(
                f"{self.running} requests hold {mib(self.in_use)} of the {mib(self.budget)} "
                f"memory budget and {len(self._waiters)} are waiting"
            )
        future: asyncio.Future[Permit] = self._loop.create_future()
        entry = (weight, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.wait_seconds):
                return await asyncio.shield(future)
        except TimeoutError:
            if future.done() and not future.cancelled():
                return future.result()  # admitted just as the wait ran out
            raise self._busy(
                f"no room in the {mib(self.budget)} memory budget within "
                f"{self.wait_seconds:g} seconds"
            ) from None
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                future.result().release()
            raise
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
                future.cancel()
                self._wake()  # the head may have changed

    def _give_back(self, weight: int, slot: bool) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._give_back_now, weight, slot)
                return
        self._give_back_now(weight, slot)

    def _give_back_now(self, weight: int, slot: bool) -> None:
        self.in_use -= weight
        self.running -= 1 if slot else 0
        self._wake()

    def _wake(self) -> None:
        """Admit waiters from the head of the queue while they fit."""
        while self._waiters:
            weight, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if not self._fits(weight):
                return
            self._waiters.popleft()
            future.set_result(self._admit(weight))


__all__ = ["MemoryGate", "Permit"]
