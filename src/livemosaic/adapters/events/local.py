"""The in-process event bus: events reach the subscribers of this process only.

The default with an embedded (SQLite) catalog. Several server processes on one catalog then
learn of each other's snapshots by polling (``snapshot_poll_seconds``); a PostgreSQL bus
(:mod:`livemosaic.adapters.events.postgres`) carries them instead.
"""

from __future__ import annotations

from livemosaic.core.events import Dispatcher, Event


class LocalEventBus(Dispatcher):
    """Delivers every event synchronously to this process's subscribers."""

    @property
    def reaches_other_processes(self) -> bool:
        """Never: the bus lives in this process."""
        return False

    @property
    def connected(self) -> bool:
        """Never: no event of another process arrives here."""
        return False

    def publish(self, event: Event) -> None:
        """Run the subscribers of ``event`` now, on the calling thread."""
        self.dispatch(event)

    def start(self) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to close."""


__all__ = ["LocalEventBus"]
