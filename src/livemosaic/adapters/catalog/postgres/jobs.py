"""Geoprocessing jobs in PostgreSQL, claimed exactly once across every node.

The job store of the SQLite catalog does the bookkeeping (rows, transitions, expected-status
updates); this one changes how jobs are taken. A claim locks the oldest submitted job with
``FOR UPDATE SKIP LOCKED``, so concurrent claims on N nodes take different jobs without
waiting, then holds an advisory lock on the job's service and checks again that no job of that
service runs, so one service never runs two jobs at once. Orphans (jobs whose runner stopped
heartbeating, e.g. a node that died) are taken the same way by whichever node looks first: put
back in the queue, or failed after too many restarts (:func:`..jobs.orphan_fate`).
Job writes never take the catalog write lock, so a long ingest does not hold up the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from livemosaic.adapters.catalog.connection import ConnectionPool
from livemosaic.adapters.catalog.jobs import SqliteJobStore, job_from_row, orphan_fate
from livemosaic.adapters.catalog.postgres.connection import LOCK_SPACE, PgConnection, PgPool
from livemosaic.core import jobs
from livemosaic.core.jobs import Job, transition

SERVICE_LOCK = 3  # (LOCK_SPACE, SERVICE_LOCK, hash of the service key): one claim at a time

_RUNNING = (
    f"x.status IN ('{jobs.EXECUTING}', '{jobs.CANCELLING}') AND x.worker IS NOT NULL "
    "AND x.service_key = ?"
)
_CLAIM = (
    "SELECT * FROM jobs AS j WHERE j.task = ? AND j.status = ? AND (j.service_key = '' OR NOT "
    f"EXISTS (SELECT 1 FROM jobs AS x WHERE {_RUNNING.replace('= ?', '= j.service_key')})) "
    "ORDER BY j.created, j.seq LIMIT 1 FOR UPDATE OF j SKIP LOCKED"
)
_ORPHANS = (
    f"SELECT * FROM jobs AS j WHERE j.status IN ('{jobs.EXECUTING}', '{jobs.CANCELLING}') "
    "AND j.worker IS NOT NULL AND NOT EXISTS (SELECT 1 FROM job_workers AS w "
    "WHERE w.worker = j.worker AND w.heartbeat >= ?) FOR UPDATE OF j SKIP LOCKED"
)


class _QueuePool:
    """The pool as the shared job store sees it: writes without the catalog lock."""

    def __init__(self, pool: PgPool) -> None:
        self.pool = pool

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        with self.pool.read() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[PgConnection]:
        with self.pool.write(lock=None) as conn:
            yield conn


class PostgresJobStore(SqliteJobStore):
    """A :class:`~livemosaic.core.ports.JobStore` in PostgreSQL, shared by every node."""

    def __init__(self, pool: PgPool) -> None:
        super().__init__(cast(ConnectionPool, _QueuePool(pool)))
        self.pg = pool

    def claim_next_job(self, task: str, worker: str, now: int) -> Job | None:
        """Move the oldest submitted job to executing for ``worker``, exactly once across
        nodes; never while another job of the same service runs."""
        with self.pg.write(lock=None) as conn:
            row = conn.execute(_CLAIM, (task, jobs.SUBMITTED)).fetchone()
            if row is None:
                return None
            job = job_from_row(row)
            if job.service_key:
                conn.execute(
                    "SELECT pg_advisory_xact_lock(?, hashtext(?))",
                    (LOCK_SPACE * 16 + SERVICE_LOCK, job.service_key),
                )
                busy = conn.execute(
                    f"SELECT 1 FROM jobs AS x WHERE {_RUNNING} LIMIT 1", (job.service_key,)
                ).fetchone()
                if busy is not None:
                    return None  # another node started a job of this service meanwhile
            job = transition(job, jobs.EXECUTING, now, worker=worker)
            self._update(conn, job, jobs.SUBMITTED)  # type: ignore[arg-type]
        return job

    def heartbeat(self, worker: str, now: int) -> None:
        """Record that a worker process is alive."""
        with self.pg.write(lock=None) as conn:
            conn.execute(
                "INSERT INTO job_workers (worker, heartbeat) VALUES (?, ?) ON CONFLICT (worker) "
                "DO UPDATE SET heartbeat = GREATEST(job_workers.heartbeat, excluded.heartbeat)",
                (worker, now),
            )

    def requeue_orphans(self, stale_before: int, now: int) -> list[str]:
        """Put jobs executing on workers silent since ``stale_before`` back to submitted
        (cancelled when they were being cancelled, failed after too many restarts)."""
        requeued: list[str] = []
        with self.pg.write(lock=None) as conn:
            for row in conn.execute(_ORPHANS, (stale_before,)).fetchall():
                job = job_from_row(row)
                new = orphan_fate(job, now)
                if new.status == jobs.SUBMITTED:
                    requeued.append(job.id)
                self._update(conn, new, job.status)  # type: ignore[arg-type]
            conn.execute("DELETE FROM job_workers WHERE heartbeat < ?", (stale_before,))
        return requeued


__all__ = ["PostgresJobStore"]
