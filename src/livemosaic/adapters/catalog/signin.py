"""Failed sign-in attempts in the catalog database (``signin_attempts``, migration 0005).

:meth:`SqliteSigninAttempts.begin` counts and records in one ``BEGIN IMMEDIATE``
transaction, so two processes (or threads) cannot both see room for the last attempt.
"""

from __future__ import annotations

from livemosaic.adapters.catalog.connection import ConnectionPool


class SqliteSigninAttempts:
    """A :class:`~livemosaic.core.ports.SigninAttempts` in the catalog database."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def begin(self, username: str, address: str, now_ms: int, window_ms: int, limit: int) -> int:
        """Count one attempt unless ``limit`` are in the window (then: ms to wait)."""
        with self._pool.write() as conn:
            conn.execute("DELETE FROM signin_attempts WHERE at <= ?", (now_ms - window_ms,))
            rows = conn.execute(
                "SELECT at FROM signin_attempts WHERE username = ? AND address = ? ORDER BY at",
                (username, address),
            ).fetchall()
            if len(rows) >= limit:
                oldest = int(rows[len(rows) - limit][0])  # room once this one leaves
                return max(1, oldest + window_ms - now_ms)
            conn.execute(
                "INSERT INTO signin_attempts (username, address, at) VALUES (?, ?, ?)",
                (username, address, now_ms),
            )
            return 0

    def succeeded(self, username: str, address: str) -> None:
        """Forget the attempts of one user from one address."""
        with self._pool.write() as conn:
            conn.execute(
                "DELETE FROM signin_attempts WHERE username = ? AND address = ?",
                (username, address),
            )


__all__ = ["SqliteSigninAttempts"]
