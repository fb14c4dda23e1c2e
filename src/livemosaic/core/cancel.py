"""Cooperative cancellation of a request's work: a deadline and a cancel flag.

The REST layer gives each admitted request a :class:`CancelToken`; the exporter calls
:meth:`CancelToken.check` between item reads, between points and before encoding, and stops
with :class:`~livemosaic.errors.RequestCancelled` once the client has gone or the deadline has
passed. A read already under way finishes first (GDAL cannot be interrupted mid-read), so work
stops within one item read of the cancellation. The token knows nothing of HTTP.
"""

from __future__ import annotations

import threading
import time

from livemosaic.errors import RequestCancelled


class CancelToken:
    """A deadline (monotonic seconds, None = none) and a flag another thread may set."""

    def __init__(self, deadline: float | None = None, timeout_seconds: float = 0.0) -> None:
        self.deadline = deadline
        self.timeout_seconds = timeout_seconds  # for the message
        self._reason: str | None = None
        self._lock = threading.Lock()
        self.checks = 0  # how many times the work looked (tests observe early stops)

    @classmethod
    def after(cls, seconds: float) -> CancelToken:
        """A token whose deadline is ``seconds`` from now."""
        return cls(time.monotonic() + seconds, seconds)

    def cancel(self, reason: str) -> None:
        """Ask the work to stop at its next check (the first reason given is kept)."""
        with self._lock:
            if self._reason is None:
                self._reason = reason

    @property
    def reason(self) -> str | None:
        """Why the work must stop, or None while it may go on."""
        if self._reason is None and self.expired:
            self.cancel("deadline")
        return self._reason

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def check(self) -> None:
        """Raise RequestCancelled when the work must stop."""
        self.checks += 1
        reason = self.reason
        if reason is not None:
            raise (
                deadline_error(self.timeout_seconds)
                if reason == "deadline"
                else (RequestCancelled(f"The request was cancelled: {reason}."))
            )


def deadline_error(timeout_seconds: float) -> RequestCancelled:
    """The error of a request that ran past its deadline."""
    return RequestCancelled(
        f"The request took longer than the limit of {timeout_seconds:g} seconds and was stopped.",
        next_step="Ask for a smaller area or image (or fewer items), or raise "
        "LIVEMOSAIC_REQUEST_TIMEOUT_SECONDS.",
    )


def check(token: CancelToken | None) -> None:
    """``token.check()`` when there is a token (work without one runs to its end)."""
    if token is not None:
        token.check()


__all__ = ["CancelToken", "check", "deadline_error"]
