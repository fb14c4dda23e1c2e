"""The failed sign-in throttle: at most ``max_failures`` attempts of one user from one
address within a sliding window of ``window_seconds``, counted in the shared store.

Every attempt is counted before its password is checked (atomically with the check of the
count, in :class:`~livemosaic.core.ports.SigninAttempts`), and a good sign-in forgets them.
So concurrent attempts cannot slip past the count, and N server processes over one catalog
allow what one process allows, not N times as much.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from livemosaic.core.ports import SigninAttempts


class SigninThrottle:
    """Failed sign-ins per (username, address) in a sliding window, in the shared store."""

    def __init__(
        self,
        attempts: SigninAttempts,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.attempts = attempts
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock  # wall-clock seconds: every process must agree on it

    def begin(self, username: str, address: str) -> float:
        """Count an attempt: 0 when it may go ahead, else the seconds to wait (not counted)."""
        now_ms = int(self.clock() * 1000)
        window_ms = int(self.window * 1000)
        wait_ms = self.attempts.begin(username, address, now_ms, window_ms, self.max_failures)
        return wait_ms / 1000

    def succeeded(self, username: str, address: str) -> None:
        """A good sign-in: the user's earlier failures from this address no longer count."""
        self.attempts.succeeded(username, address)


__all__ = ["SigninThrottle"]
