"""Geoprocessing jobs in the SQLite catalog database, shared by every server process.

Each change is one transaction on the catalog's connection pool. A claim runs in a single
``BEGIN IMMEDIATE`` transaction, so of several processes polling the queue exactly one gets a
job, and a job is never claimed while another job of the same service is running. Runners
heartbeat into ``job_workers``; a job whose runner went silent is put back in the queue (or
failed, after it stopped its runner :data:`MAX_RESTARTS` times), so no job stays executing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any, cast

from livemosaic.adapters.catalog import codec
from livemosaic.adapters.catalog.connection import ConnectionPool
from livemosaic.core import jobs
from livemosaic.core.jobs import (
    ALLOWED,
    InvalidTransition,
    Job,
    JobMessage,
    JobStatus,
    MessageType,
    transition,
)
from livemosaic.errors import AlreadyExists, NotFound

log = logging.getLogger(__name__)

RESTARTED = "Restarted: the server process running this job stopped."
MAX_RESTARTS = 3  # a job that stopped its process this often is failed, not run again


def _running(alias: str) -> str:
    """SQL: the job is held by a runner (executing, or being cancelled after it started)."""
    return (
        f"{alias}.status IN ('{jobs.EXECUTING}', '{jobs.CANCELLING}') "
        f"AND {alias}.worker IS NOT NULL"
    )


# The oldest submitted job of a task whose service has no job running ('' = no service).
_CLAIM = (
    "SELECT * FROM jobs AS j WHERE j.task = ? AND j.status = ? AND (j.service_key = '' OR "
    f"NOT EXISTS (SELECT 1 FROM jobs AS x WHERE x.service_key = j.service_key AND {_running('x')}))"
    " ORDER BY j.created, j.rowid LIMIT 1"
)
# Jobs held by a runner with no heartbeat since a cut-off.
_ORPHANS = (
    f"SELECT * FROM jobs AS j WHERE {_running('j')} AND NOT EXISTS (SELECT 1 FROM job_workers "
    "AS w WHERE w.worker = j.worker AND w.heartbeat >= ?)"
)


def _messages_to_json(messages: tuple[JobMessage, ...]) -> str:
    return codec.dumps([{"type": m.type, "description": m.description} for m in messages])


def _messages_from_json(text: str) -> tuple[JobMessage, ...]:
    return tuple(
        JobMessage(cast(MessageType, m["type"]), str(m["description"])) for m in json.loads(text)
    )


def job_row(job: Job) -> dict[str, Any]:
    """The column values of a job."""
    return {
        "id": job.id,
        "task": job.task,
        "status": job.status,
        "owner": job.owner,
        "service_key": job.service_key,
        "inputs": codec.dumps(dict(job.inputs)),
        "results": codec.dumps(dict(job.results)),
        "messages": _messages_to_json(job.messages),
        "worker": job.worker,
        "created": job.created,
        "updated": job.updated,
        "started": job.started,
        "finished": job.finished,
    }


def job_from_row(row: sqlite3.Row) -> Job:
    """The job a row stores."""
    return Job(
        id=row["id"],
        task=row["task"],
        status=cast(JobStatus, row["status"]),
        owner=row["owner"],
        inputs=json.loads(row["inputs"]),
        created=int(row["created"]),
        updated=int(row["updated"]),
        service_key=row["service_key"],
        results=json.loads(row["results"]),
        messages=_messages_from_json(row["messages"]),
        worker=row["worker"],
        started=row["started"],
        finished=row["finished"],
    )


def _job_not_found(job_id: str) -> NotFound:
    return NotFound(
        f"Job '{job_id}' does not exist.",
        next_step="Check the job id; finished jobs are deleted after the retention period.",
        message="Job not found.",
    )


def _restarts(job: Job) -> int:
    return sum(1 for m in job.messages if m.description == RESTARTED)


def orphan_fate(job: Job, now: int) -> Job:
    """What becomes of a job whose runner stopped: back to submitted, cancelled when it was
    being cancelled, failed once its runner stopped :data:`MAX_RESTARTS` times."""
    note = jobs.info(RESTARTED)
    if job.status == jobs.CANCELLING:
        new = transition(job, jobs.CANCELLED, now, messages=(note,))
    elif _restarts(job) >= MAX_RESTARTS:
        failure = jobs.error(
            f"Failed: the server process running this job stopped {MAX_RESTARTS + 1} "
            "times; it is not run again. Check the server log for the cause."
        )
        new = transition(job, jobs.FAILED, now, messages=(failure,))
    else:
        new = transition(job, jobs.SUBMITTED, now, messages=(note,))
    if new.status != jobs.SUBMITTED:
        log.warning("job %s: its worker %s stopped; %s", job.id, job.worker, new.status)
    return new


class SqliteJobStore:
    """A :class:`~livemosaic.core.ports.JobStore` in the catalog database."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def create_job(self, job: Job) -> Job:
        """Store a new job (AlreadyExists if its id is taken)."""
        row = job_row(job)
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._pool.write() as conn:
            if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job.id,)).fetchone() is not None:
                raise AlreadyExists(
                    f"Job '{job.id}' exists already.", next_step="Submit it with a new job id."
                )
            conn.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", row)
        return job

    def get_job(self, job_id: str) -> Job:
        """A job by id (NotFound "Job not found." otherwise)."""
        with self._pool.read() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise _job_not_found(job_id)
        return job_from_row(row)

    @staticmethod
    def _update(conn: sqlite3.Connection, job: Job, expected_status: str) -> None:
        row = job_row(job)
        cur = conn.execute(
            "UPDATE jobs SET status = :status, results = :results, messages = :messages, "
            "worker = :worker, updated = :updated, started = :started, finished = :finished "
            "WHERE id = :id AND status = :expected",
            {**row, "expected": expected_status},
        )
        if cur.rowcount == 1:
            return
        stored = conn.execute("SELECT status FROM jobs WHERE id = ?", (job.id,)).fetchone()
        if stored is None:
            raise _job_not_found(job.id)
        raise InvalidTransition(
            f"job {job.id} is {stored[0]}, not {expected_status}: another process changed it"
        )

    def update_job(self, job: Job, *, expected_status: str) -> Job:
        """Store a job's new state if its stored status is still ``expected_status``.

        Raises InvalidTransition when another process changed it first, or when
        ``expected_status`` may not become ``job.status``.
        """
        if job.status != expected_status and job.status not in ALLOWED.get(
            expected_status, frozenset()
        ):
            raise InvalidTransition(f"job {job.id}: {expected_status} cannot become {job.status}")
        with self._pool.write() as conn:
            self._update(conn, job, expected_status)
        return job

    def claim_next_job(self, task: str, worker: str, now: int) -> Job | None:
        """Atomically move the oldest submitted job to executing for ``worker``.

        A job is not claimed while another job of the same ``service_key`` is executing, so
        jobs of one service never run at the same time, in any process.
        """
        with self._pool.write() as conn:
            row = conn.execute(_CLAIM, (task, jobs.SUBMITTED)).fetchone()
            if row is None:
                return None
            job = transition(job_from_row(row), jobs.EXECUTING, now, worker=worker)
            self._update(conn, job, jobs.SUBMITTED)
        return job

    def heartbeat(self, worker: str, now: int) -> None:
        """Record that a worker process is alive."""
        with self._pool.write() as conn:
            conn.execute(
                "INSERT INTO job_workers (worker, heartbeat) VALUES (?, ?) ON CONFLICT (worker) "
                "DO UPDATE SET heartbeat = MAX(heartbeat, excluded.heartbeat)",
                (worker, now),
            )

    def requeue_orphans(self, stale_before: int, now: int) -> list[str]:
        """Put jobs executing on workers silent since ``stale_before`` back to submitted.

        Returns the ids of the jobs put back. A job whose worker stopped :data:`MAX_RESTARTS`
        times is failed instead, and a job that was being cancelled becomes cancelled.
        """
        requeued: list[str] = []
        with self._pool.write() as conn:
            rows = conn.execute(_ORPHANS, (stale_before,)).fetchall()
            for row in rows:
                job = job_from_row(row)
                new = orphan_fate(job, now)
                if new.status == jobs.SUBMITTED:
                    requeued.append(job.id)
                self._update(conn, new, job.status)
            conn.execute("DELETE FROM job_workers WHERE heartbeat < ?", (stale_before,))
        return requeued

    def delete_jobs_finished_before(self, when: int) -> int:
        """Delete finished jobs older than ``when``; returns how many."""
        with self._pool.write() as conn:
            cur = conn.execute(
                "DELETE FROM jobs WHERE finished IS NOT NULL AND finished < ?", (when,)
            )
        return int(cur.rowcount)

    def close(self) -> None:
        """Nothing to release: the connection pool belongs to the catalog store."""
