"""Job states and transitions."""

from __future__ import annotations

import re

import pytest

from livemosaic.core import jobs
from livemosaic.core.jobs import InvalidTransition, Job, new_job_id, transition


def make() -> Job:
    return Job(
        id=new_job_id(),
        task="Refresh Service",
        status=jobs.SUBMITTED,
        owner="ops",
        inputs={},
        created=1,
        updated=1,
    )


def test_job_ids_look_like_arcgis() -> None:
    ids = {new_job_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"j[0-9a-f]{32}", i) for i in ids)


def test_happy_path_records_times_and_messages() -> None:
    job = transition(make(), jobs.EXECUTING, 5, worker="w1", messages=(jobs.info("Start"),))
    assert job.started == 5 and job.worker == "w1"
    job = transition(
        job, jobs.SUCCEEDED, 9, results={"refreshResults": "{}"}, messages=(jobs.info("Done"),)
    )
    assert job.is_terminal and job.finished == 9
    assert [m.description for m in job.messages] == ["Start", "Done"]
    with pytest.raises(InvalidTransition):
        transition(job, jobs.EXECUTING, 10)


def test_cancel_and_requeue() -> None:
    job = transition(make(), jobs.CANCELLING, 2)
    job = transition(job, jobs.CANCELLED, 3)
    assert job.is_terminal
    running = transition(make(), jobs.EXECUTING, 2, worker="dead")
    again = transition(running, jobs.SUBMITTED, 3)
    assert again.worker is None
    with pytest.raises(InvalidTransition):
        transition(make(), jobs.SUCCEEDED, 2)
