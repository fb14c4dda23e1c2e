"""The job runner: claims submitted jobs from the shared job store and executes them.

One runner lives in each server process (started by the app lifespan). It heartbeats, puts
back jobs whose worker went silent (a process that died mid-job), claims the oldest submitted
job — never two jobs of one service at once, in any process — runs it on a worker thread and
stores the outcome. ``wake()`` makes it look for work at once after a submission, so a job
normally starts within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from livemosaic.core import jobs
from livemosaic.core.jobs import InvalidTransition, Job, transition
from livemosaic.core.ports import JobStore
from livemosaic.core.refresh import (
    TASK_NAME,
    Refresher,
    RefreshFailed,
    RefreshJobCodec,
    RefreshRequest,
)
from livemosaic.errors import LiveMosaicError

log = logging.getLogger(__name__)


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def worker_id() -> str:
    """A unique id for this process's runner."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    """Claims and executes Refresh Service jobs."""

    def __init__(
        self,
        store: JobStore,
        refresher: Refresher,
        codec: RefreshJobCodec,
        *,
        poll_seconds: float = 0.5,
        heartbeat_seconds: float = 2.0,
        stale_seconds: float = 15.0,
        retention_seconds: float = 7 * 24 * 3600,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.refresher = refresher
        self.codec = codec  # reads job inputs, writes job results (the web API's format)
        self.worker = worker_id()
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        self.retention_seconds = retention_seconds
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livemosaic-job")
        self._last_heartbeat = 0.0
        self._last_cleanup = 0.0

    def wake(self) -> None:
        """Look for work now (called after a submission in this process)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the background loop."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._housekeeping, True)
        self._task = asyncio.create_task(self._loop(), name="livemosaic-job-runner")

    async def stop(self) -> None:
        """Stop the loop; a job being executed is finished first."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self._executor, self._housekeeping, False)
                worked = await loop.run_in_executor(self._executor, self.run_once)
            except asyncio.CancelledError:
                raise
            except Exception:  # the runner must survive a failing database
                log.exception("job runner iteration failed")
                worked = False
            if worked:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    def _housekeeping(self, force: bool) -> None:
        mono = time.monotonic()
        if force or mono - self._last_heartbeat >= self.heartbeat_seconds:
            self._last_heartbeat = mono
            now = self.clock()
            self.store.heartbeat(self.worker, now)
            requeued = self.store.requeue_orphans(now - int(self.stale_seconds * 1000), now)
            for job_id in requeued:
                log.warning(
                    "job %s was left executing by a stopped process; running it again", job_id
                )
        if force or mono - self._last_cleanup >= 3600:
            self._last_cleanup = mono
            cutoff = self.clock() - int(self.retention_seconds * 1000)
            self.store.delete_jobs_finished_before(cutoff)

    def run_once(self) -> bool:
        """Claim and execute one job; False when there was none."""
        job = self.store.claim_next_job(TASK_NAME, self.worker, self.clock())
        if job is None:
            return False
        self.execute(job)
        return True

    def execute(self, job: Job) -> Job:
        """Run a claimed (executing) job and store its outcome."""
        started = self.clock()
        messages: list[jobs.JobMessage] = [jobs.info(f"Start Time: {_iso(started)}")]
        status: jobs.JobStatus
        results: dict[str, str] | None = None
        try:
            request: RefreshRequest = self.codec.read_request(job.inputs)
            outcome = self.refresher.refresh(request)
            service = f"{outcome.after.qualified_name}.ImageServer"
            if outcome.changed:
                messages.append(
                    jobs.info(
                        f"Refreshed {service}: {outcome.after.summary.item_count} items; "
                        f"changed: {', '.join(self.codec.field_names(outcome.changed))}."
                    )
                )
            else:
                messages.append(jobs.info(f"Refreshed {service}: No changes detected."))
            results = self.codec.job_results(outcome)
            status = jobs.SUCCEEDED
        except (RefreshFailed, LiveMosaicError) as exc:
            messages.append(jobs.error(str(exc)))
            status = jobs.FAILED
        except Exception as exc:  # never leave a job executing
            log.exception("refresh job %s failed", job.id)
            messages.append(jobs.error(f"Unexpected failure: {type(exc).__name__}: {exc}"))
            status = jobs.FAILED
        finished = self.clock()
        elapsed = (finished - started) / 1000
        word = "Succeeded" if status == jobs.SUCCEEDED else "Failed"
        messages.append(
            jobs.info(f"{word} at {_iso(finished)} (Elapsed Time: {elapsed:.2f} seconds)")
        )
        return self._store_outcome(job, status, tuple(messages), results, finished)

    def _store_outcome(
        self,
        job: Job,
        status: jobs.JobStatus,
        messages: tuple[jobs.JobMessage, ...],
        results: dict[str, str] | None,
        now: int,
    ) -> Job:
        for _ in range(5):
            current = self.store.get_job(job.id)
            if current.worker != self.worker:
                # re-queued while this worker stalled and claimed by another: not ours to finish
                return current
            if current.status == jobs.CANCELLING:
                note = jobs.warning(
                    "Cancelled after the refresh was applied; it is not rolled back."
                )
                final = jobs.CANCELLED if status != jobs.SUCCEEDED else jobs.SUCCEEDED
                extra = (note,) if status == jobs.SUCCEEDED else ()
                new = transition(current, final, now, messages=messages + extra, results=results)
            elif current.status == jobs.EXECUTING:
                new = transition(current, status, now, messages=messages, results=results)
            else:
                return current
            try:
                return self.store.update_job(new, expected_status=current.status)
            except InvalidTransition:
                continue
        return self.store.get_job(job.id)
