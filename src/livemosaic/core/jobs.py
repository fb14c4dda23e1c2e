"""Geoprocessing jobs: states, allowed transitions and the job value.

Job statuses are ArcGIS's (spec 8.4). A job moves ``esriJobSubmitted`` → ``esriJobExecuting``
→ ``esriJobSucceeded`` | ``esriJobFailed`` | ``esriJobTimedOut``; a cancel moves a submitted or
executing job to ``esriJobCancelling`` and then ``esriJobCancelled``. Every change goes through
:func:`transition`, which refuses anything else, so a stored job can never be in an impossible
state.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

JobStatus = Literal[
    "esriJobNew",
    "esriJobSubmitted",
    "esriJobWaiting",
    "esriJobExecuting",
    "esriJobSucceeded",
    "esriJobFailed",
    "esriJobTimedOut",
    "esriJobCancelling",
    "esriJobCancelled",
    "esriJobDeleting",
    "esriJobDeleted",
]
MessageType = Literal[
    "esriJobMessageTypeInformative",
    "esriJobMessageTypeWarning",
    "esriJobMessageTypeError",
    "esriJobMessageTypeEmpty",
    "esriJobMessageTypeAbort",
]

SUBMITTED: JobStatus = "esriJobSubmitted"
EXECUTING: JobStatus = "esriJobExecuting"
SUCCEEDED: JobStatus = "esriJobSucceeded"
FAILED: JobStatus = "esriJobFailed"
TIMED_OUT: JobStatus = "esriJobTimedOut"
CANCELLING: JobStatus = "esriJobCancelling"
CANCELLED: JobStatus = "esriJobCancelled"

TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, "esriJobDeleted"})

ALLOWED: dict[str, frozenset[str]] = {
    "esriJobNew": frozenset({SUBMITTED, CANCELLED}),
    SUBMITTED: frozenset({EXECUTING, CANCELLING, CANCELLED, FAILED}),
    "esriJobWaiting": frozenset({EXECUTING, CANCELLING, CANCELLED, FAILED}),
    EXECUTING: frozenset({SUCCEEDED, FAILED, TIMED_OUT, CANCELLING, SUBMITTED}),
    CANCELLING: frozenset({CANCELLED, SUCCEEDED, FAILED}),
}


class InvalidTransition(RuntimeError):
    """A job was asked to move to a status its current status does not allow."""


@dataclass(frozen=True, slots=True)
class JobMessage:
    """One job message (type + description)."""

    type: MessageType
    description: str


@dataclass(frozen=True, slots=True)
class Job:
    """A geoprocessing job as stored: inputs as submitted, results once succeeded.

    ``service_key`` names the service the job works on (used to serialise refreshes of one
    service); ``worker`` is the id of the process executing it.
    """

    id: str
    task: str
    status: JobStatus
    owner: str
    inputs: Mapping[str, str]
    created: int
    updated: int
    service_key: str = ""
    results: Mapping[str, Any] = field(default_factory=dict)
    messages: tuple[JobMessage, ...] = ()
    worker: str | None = None
    started: int | None = None
    finished: int | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the job can change no more."""
        return self.status in TERMINAL


def new_job_id() -> str:
    """An ArcGIS-style job id: ``j`` followed by 32 lowercase hex characters."""
    return "j" + uuid.uuid4().hex


def info(text: str) -> JobMessage:
    """An informative message."""
    return JobMessage("esriJobMessageTypeInformative", text)


def warning(text: str) -> JobMessage:
    """A warning message."""
    return JobMessage("esriJobMessageTypeWarning", text)


def error(text: str) -> JobMessage:
    """An error message."""
    return JobMessage("esriJobMessageTypeError", text)


def transition(
    job: Job,
    status: JobStatus,
    now: int,
    *,
    messages: tuple[JobMessage, ...] = (),
    results: Mapping[str, Any] | None = None,
    worker: str | None = None,
) -> Job:
    """The job in its new status (InvalidTransition when the move is not allowed)."""
    if status != job.status and status not in ALLOWED.get(job.status, frozenset()):
        raise InvalidTransition(f"job {job.id}: {job.status} cannot become {status}")
    changes: dict[str, Any] = {
        "status": status,
        "updated": now,
        "messages": job.messages + messages,
    }
    if results is not None:
        changes["results"] = dict(results)
    if status == EXECUTING:
        changes["started"] = now
        changes["worker"] = worker
    if status in TERMINAL:
        changes["finished"] = now
    if status == SUBMITTED:  # re-queued after its worker died
        changes["worker"] = None
    return replace(job, **changes)
