"""In-memory implementations of every store port, for unit tests of the domain core.

Honest, small implementations, not mocks: each one does what its port documents and passes
the same contract tests as the SQLite store (tests/contract). One process only; a lock makes
every method one atomic step, and a failing call changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import get_args

from livemosaic.adapters.catalog.jobs import MAX_RESTARTS, RESTARTED
from livemosaic.adapters.catalog.users import user_not_found, validate_role, validate_username
from livemosaic.core import jobs
from livemosaic.core.jobs import ALLOWED, InvalidTransition, Job, transition
from livemosaic.core.models import (
    RasterItem,
)
from livemosaic.core.ports import (
    AddResult,
    JournalEntry,
    JournalState,
)
from livemosaic.core.security import User
from livemosaic.errors import (
    AlreadyExists,
    InvalidParameter,
    NotFound,
    StoreError,
)
from tests.core.fake_catalog import DatasetState, InMemoryCatalog
from tests.core.fake_queries import now_ms

JOURNAL_STATES = get_args(JournalState)


# --- ingest journal ------------------------------------------------------------------------


class InMemoryIngestJournal:
    """A :class:`~livemosaic.core.ports.IngestJournal` kept with the datasets of a catalog."""

    def __init__(self, catalog: InMemoryCatalog) -> None:
        self.catalog = catalog

    def lookup(self, dataset: str, paths: Sequence[str]) -> dict[str, JournalEntry]:
        with self.catalog.lock:
            rows = self.catalog.ds(dataset).journal
            return {p: rows[p] for p in paths if p in rows}

    @staticmethod
    def _check(entries: Sequence[JournalEntry]) -> None:
        for e in entries:
            if e.state not in JOURNAL_STATES:
                raise StoreError(f"'{e.state}' is not a journal state.")

    @staticmethod
    def _write(state: DatasetState, entries: Sequence[JournalEntry]) -> None:
        now = now_ms()
        for e in entries:
            old = state.journal.get(e.path)
            first = old.first_seen if old is not None else (e.first_seen or now)
            state.journal[e.path] = replace(
                e, dataset=state.dataset.name, first_seen=first, updated=e.updated or now
            )

    def record(self, entries: Sequence[JournalEntry]) -> None:
        self._check(entries)
        with self.catalog.lock:
            states = [self.catalog.ds(e.dataset) for e in entries]  # all found before writing
            for state, e in zip(states, entries, strict=True):
                self._write(state, [e])

    def commit(
        self, dataset: str, items: Sequence[RasterItem], entries: Sequence[JournalEntry]
    ) -> AddResult:
        self._check(entries)  # every check before the first change: all or nothing
        with self.catalog.lock:
            state = self.catalog.ds(dataset)
            result = self.catalog.add_items(dataset, items)
            self._write(state, entries)
        return result

    def entries(
        self,
        dataset: str | None = None,
        state: JournalState | None = None,
        *,
        under: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        with self.catalog.lock:
            if dataset is not None:
                sets = [self.catalog.ds(dataset)]
            else:
                sets = list(self.catalog.states())
            rows = [e for s in sets for e in s.journal.values()]
        if state is not None:
            rows = [e for e in rows if e.state == state]
        if under:
            prefix = under.rstrip("/") + "/"
            rows = [e for e in rows if e.path.startswith(prefix)]
        rows.sort(key=lambda e: (e.dataset.lower(), e.path))
        return rows if limit is None else rows[: max(int(limit), 0)]

    def forget(
        self,
        dataset: str | None = None,
        *,
        state: JournalState | None = None,
        paths: Sequence[str] | None = None,
    ) -> int:
        with self.catalog.lock:
            if dataset is not None:
                sets = [self.catalog.ds(dataset)]
            else:
                sets = list(self.catalog.states())
            count = 0
            for s in sets:
                for path, e in list(s.journal.items()):
                    if state is not None and e.state != state:
                        continue
                    if paths is not None and path not in paths:
                        continue
                    del s.journal[path]
                    count += 1
        return count


# --- jobs, users, sign-in attempts -----------------------------------------------------------


class InMemoryJobStore:
    """A :class:`~livemosaic.core.ports.JobStore` in a dict (claims are atomic under a lock)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}  # in the order they were created
        self.workers: dict[str, int] = {}

    def create_job(self, job: Job) -> Job:
        with self.lock:
            if job.id in self.jobs:
                raise AlreadyExists(f"Job '{job.id}' exists already.")
            self.jobs[job.id] = job
        return job

    def get_job(self, job_id: str) -> Job:
        with self.lock:
            found = self.jobs.get(job_id)
        if found is None:
            raise NotFound(f"Job '{job_id}' does not exist.", message="Job not found.")
        return found

    def _store(self, job: Job, expected_status: str) -> None:
        stored = self.jobs.get(job.id)
        if stored is None:
            raise NotFound(f"Job '{job.id}' does not exist.", message="Job not found.")
        if stored.status != expected_status:
            raise InvalidTransition(
                f"job {job.id} is {stored.status}, not {expected_status}: another process changed it"
            )
        self.jobs[job.id] = replace(
            stored,
            status=job.status,
            results=job.results,
            messages=job.messages,
            worker=job.worker,
            updated=job.updated,
            started=job.started,
            finished=job.finished,
        )

    def update_job(self, job: Job, *, expected_status: str) -> Job:
        if job.status != expected_status and job.status not in ALLOWED.get(
            expected_status, frozenset()
        ):
            raise InvalidTransition(f"job {job.id}: {expected_status} cannot become {job.status}")
        with self.lock:
            self._store(job, expected_status)
        return job

    def _running(self, job: Job) -> bool:
        return job.status in (jobs.EXECUTING, jobs.CANCELLING) and job.worker is not None

    def claim_next_job(self, task: str, worker: str, now: int) -> Job | None:
        with self.lock:
            busy = {j.service_key for j in self.jobs.values() if self._running(j)}
            waiting = [
                j
                for j in self.jobs.values()
                if j.task == task
                and j.status == jobs.SUBMITTED
                and (j.service_key == "" or j.service_key not in busy)
            ]
            if not waiting:
                return None
            oldest = min(waiting, key=lambda j: j.created)  # stable: creation order breaks ties
            job = transition(oldest, jobs.EXECUTING, now, worker=worker)
            self._store(job, jobs.SUBMITTED)
        return job

    def heartbeat(self, worker: str, now: int) -> None:
        with self.lock:
            self.workers[worker] = max(now, self.workers.get(worker, now))

    def requeue_orphans(self, stale_before: int, now: int) -> list[str]:
        requeued: list[str] = []
        with self.lock:
            for job in list(self.jobs.values()):
                beat = self.workers.get(job.worker or "")
                if not self._running(job) or (beat is not None and beat >= stale_before):
                    continue
                note = jobs.info(RESTARTED)
                restarts = sum(1 for m in job.messages if m.description == RESTARTED)
                if job.status == jobs.CANCELLING:
                    new = transition(job, jobs.CANCELLED, now, messages=(note,))
                elif restarts >= MAX_RESTARTS:
                    failure = jobs.error(
                        f"Failed: its server process stopped {MAX_RESTARTS + 1} times."
                    )
                    new = transition(job, jobs.FAILED, now, messages=(failure,))
                else:
                    new = transition(job, jobs.SUBMITTED, now, messages=(note,))
                    requeued.append(job.id)
                self._store(new, job.status)
            self.workers = {w: t for w, t in self.workers.items() if t >= stale_before}
        return requeued

    def delete_jobs_finished_before(self, when: int) -> int:
        with self.lock:
            old = [k for k, j in self.jobs.items() if j.finished is not None and j.finished < when]
            for k in old:
                del self.jobs[k]
        return len(old)


class InMemoryUserStore:
    """A :class:`~livemosaic.core.ports.UserStore` in a dict."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}

    def add_user(self, user: User) -> None:
        validate_username(user.username)
        validate_role(user.role)
        if not user.password_hash:
            raise InvalidParameter("password", "a user needs a password hash.")
        with self.lock:
            if user.username in self.users:
                raise AlreadyExists(f"User '{user.username}' exists already.")
            created = user.created if user.created is not None else now_ms()
            self.users[user.username] = replace(user, created=created)

    def get_user(self, username: str) -> User:
        with self.lock:
            found = self.users.get(username)
        if found is None:
            raise user_not_found(username)
        return found

    def list_users(self) -> list[User]:
        with self.lock:
            return [self.users[k] for k in sorted(self.users)]

    def save_user(self, user: User) -> None:
        validate_role(user.role)
        if not user.password_hash:
            raise InvalidParameter("password", "a user needs a password hash.")
        with self.lock:
            old = self.users.get(user.username)
            if old is None:
                raise user_not_found(user.username)
            self.users[user.username] = replace(
                old,
                role=user.role,
                password_hash=user.password_hash,
                token_epoch=user.token_epoch,
                disabled=user.disabled,
            )

    def remove_user(self, username: str) -> None:
        with self.lock:
            if self.users.pop(username, None) is None:
                raise user_not_found(username)


@dataclass
class InMemorySigninAttempts:
    """A :class:`~livemosaic.core.ports.SigninAttempts` in a dict (one process only)."""

    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, username: str, address: str, now_ms: int, window_ms: int, limit: int) -> int:
        with self.lock:
            for key in list(self.rows):
                self.rows[key] = [t for t in self.rows[key] if t > now_ms - window_ms]
            times = self.rows.setdefault((username, address), [])
            if len(times) >= limit:
                return max(1, times[len(times) - limit] + window_ms - now_ms)
            times.append(now_ms)
            return 0

    def succeeded(self, username: str, address: str) -> None:
        with self.lock:
            self.rows.pop((username, address), None)


@dataclass
class InMemoryStores:
    """Every store port in memory, bundled like ``adapters.catalog.Stores``."""

    catalog: InMemoryCatalog = field(default_factory=InMemoryCatalog)
    jobs: InMemoryJobStore = field(default_factory=InMemoryJobStore)
    users: InMemoryUserStore = field(default_factory=InMemoryUserStore)
    signins: InMemorySigninAttempts = field(default_factory=InMemorySigninAttempts)
    journal: InMemoryIngestJournal = field(init=False)

    def __post_init__(self) -> None:
        self.journal = InMemoryIngestJournal(self.catalog)

    def close(self) -> None:
        """Nothing to release."""


__all__ = [
    "InMemoryCatalog",
    "InMemoryIngestJournal",
    "InMemoryJobStore",
    "InMemorySigninAttempts",
    "InMemoryStores",
    "InMemoryUserStore",
]
