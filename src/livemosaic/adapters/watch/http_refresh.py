"""Refresh Service over the REST API: the refresh trigger of a watcher running on its own.

``livemosaic watch --url URL`` (or ``LIVEMOSAIC_URL``) ingests into the shared catalog itself
but asks the server for Refresh Service the way any client does: ``submitJob`` on
``System/PublishingTools/GPServer/Refresh Service`` with a publisher token, through
:class:`~livemosaic.client.LiveMosaicClient` (which signs in, renews its token and signs in
again after a 498). The server's runner then refreshes and notifies WebSocket clients.
"""

from __future__ import annotations

import logging
import threading

from livemosaic.client import LiveMosaicClient, RemoteError

log = logging.getLogger(__name__)

WAITING = frozenset({"esriJobNew", "esriJobSubmitted", "esriJobWaiting"})


def _key(folder: str, name: str) -> str:
    return f"{folder.strip('/').lower()}/{name.lower()}"


class HttpRefresh:
    """A :class:`~livemosaic.core.triggers.RefreshTrigger` submitting jobs over HTTP.

    Like the in-process trigger, a service whose last job from this trigger still waits in
    the server's queue gets no second one (that job reads the catalog when it runs). A
    failure raises :class:`~livemosaic.client.RemoteError` (a LiveMosaicError), which the
    pipeline records as a note; the next batch or rescan asks again.
    """

    def __init__(self, client: LiveMosaicClient) -> None:
        self.client = client
        self.submitted: list[str] = []  # job ids, oldest first
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def request_refresh(self, folder: str, name: str) -> None:
        """Submit Refresh Service for ``folder/name`` unless this trigger's last job waits."""
        key = _key(folder, name)
        with self._lock:
            waiting = self._last.get(key)
            if waiting is not None:
                try:
                    if self.client.job(waiting, messages=False).status in WAITING:
                        return
                except RemoteError as exc:  # the job is gone (e.g. purged): submit a new one
                    log.debug("job %s of %s not readable: %s", waiting, key, exc)
            job_id = self.client.submit_refresh(name, folder=folder or None)
            self._last[key] = job_id
            self.submitted.append(job_id)
        log.info("Refresh Service job %s submitted for %s", job_id, f"{folder}/{name}".lstrip("/"))

    def last_job(self, folder: str, name: str) -> str | None:
        """The id of the newest job this trigger submitted for a service (None when none)."""
        with self._lock:
            return self._last.get(_key(folder, name))


__all__ = ["HttpRefresh"]
