"""Refresh triggers: how the ingest pipeline asks for Refresh Service, and when it needs to.

:func:`~livemosaic.core.refresh.summary_changes` says whether a dataset summary differs from a
service's published snapshot in the fields a refresh would change for clients
(:data:`~livemosaic.core.refresh.REFRESH_FIELDS`: extent, resolution, time extent, dimension
values). A :class:`RefreshTrigger` submits the refresh: :class:`InProcessRefresh` writes the
job into the shared job store (inside the server, or standalone next to a server using the
same catalog database), its inputs written by the web API's job codec; an HTTP trigger calls
the REST API with a publisher token.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

from livemosaic.core.jobs import SUBMITTED
from livemosaic.core.ports import JobStore
from livemosaic.core.refresh import (
    REFRESH_FIELDS,
    RefreshJobCodec,
    RefreshRequest,
    new_refresh_job,
    summary_changes,
)
from livemosaic.errors import NotFound


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class RefreshTrigger(Protocol):
    """Asks for a Refresh Service run of one image service."""

    def request_refresh(self, folder: str, name: str) -> None:
        """Submit (or forward) a refresh of service ``folder/name``."""
        ...


class InProcessRefresh:
    """Submits Refresh Service jobs straight into the job store (owner ``watcher``).

    A service whose last job from this trigger is still waiting in the queue gets no second
    one: the waiting job reads the summary when it runs, so it covers later changes too.
    ``wake`` is called after each submission (in the server, wake the job runner through
    ``loop.call_soon_threadsafe``). ``codec`` writes the job inputs.
    """

    def __init__(
        self,
        jobs: JobStore,
        codec: RefreshJobCodec,
        wake: Callable[[], None] | None = None,
        *,
        owner: str = "watcher",
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.jobs = jobs
        self.codec = codec
        self.wake = wake
        self.owner = owner
        self.clock = clock
        self.submitted: list[str] = []  # job ids, oldest first
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def with_owner(self, owner: str) -> InProcessRefresh:
        """A trigger like this one whose jobs belong to ``owner``."""
        return InProcessRefresh(self.jobs, self.codec, self.wake, owner=owner, clock=self.clock)

    def request_refresh(self, folder: str, name: str) -> None:
        """Submit a refresh job unless one of this trigger's jobs for the service still waits."""
        request = RefreshRequest(folder.strip("/"), name)
        with self._lock:
            waiting = self._last.get(request.service_key)
            if waiting is not None:
                with contextlib.suppress(NotFound):
                    if self.jobs.get_job(waiting).status == SUBMITTED:
                        return
            inputs = self.codec.job_inputs(request)
            job = self.jobs.create_job(new_refresh_job(request, inputs, self.owner, self.clock()))
            self._last[request.service_key] = job.id
            self.submitted.append(job.id)
        if self.wake is not None:
            self.wake()

    def last_job(self, folder: str, name: str) -> str | None:
        """The id of the newest job this trigger submitted for a service (None when none)."""
        key = f"{folder.strip('/').lower()}/{name.lower()}"
        with self._lock:
            return self._last.get(key)


__all__ = ["REFRESH_FIELDS", "InProcessRefresh", "RefreshTrigger", "now_ms", "summary_changes"]
