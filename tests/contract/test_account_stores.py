"""JobStore, UserStore and SigninAttempts: the same behaviour from every implementation."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from livemosaic.core import jobs
from livemosaic.core.jobs import InvalidTransition, Job, new_job_id, transition
from livemosaic.core.security import User
from livemosaic.errors import AlreadyExists, InvalidParameter, NotFound
from tests.contract.stores import StoreSet

TASK = "RefreshService"


def submit(stores: StoreSet, created: int, service: str = "", task: str = TASK) -> Job:
    """A new submitted job."""
    job = Job(new_job_id(), task, jobs.SUBMITTED, "ops", {"a": "1"}, created, created, service)
    return stores.jobs.create_job(job)


# --- jobs ----------------------------------------------------------------------------------


def test_jobs_are_created_read_and_updated_only_from_the_expected_status(
    stores: StoreSet,
) -> None:
    store = stores.jobs
    job = submit(stores, 10, "live/svc")
    with pytest.raises(AlreadyExists):
        store.create_job(job)
    assert store.get_job(job.id) == job
    with pytest.raises(NotFound):
        store.get_job("j" + "0" * 32)

    running = transition(job, jobs.EXECUTING, 11, worker="w1")
    store.update_job(running, expected_status=jobs.SUBMITTED)
    with pytest.raises(InvalidTransition):  # someone else moved it first
        store.update_job(running, expected_status=jobs.SUBMITTED)
    with pytest.raises(InvalidTransition):  # not a move the state machine allows
        store.update_job(replace(running, status=jobs.SUBMITTED), expected_status=jobs.SUCCEEDED)
    done = transition(running, jobs.SUCCEEDED, 12, results={"out": {"value": 1}})
    store.update_job(done, expected_status=jobs.EXECUTING)
    got = store.get_job(job.id)
    assert (got.status, got.worker, got.started, got.finished) == (jobs.SUCCEEDED, "w1", 11, 12)
    assert got.results == {"out": {"value": 1}} and got.inputs == {"a": "1"}
    assert got.service_key == "live/svc"


def test_claims_take_the_oldest_and_one_job_per_service_at_a_time(stores: StoreSet) -> None:
    store = stores.jobs
    a1 = submit(stores, 1, "svc/a")
    a2 = submit(stores, 2, "svc/a")
    b1 = submit(stores, 3, "svc/b")
    free = submit(stores, 4)
    other_task = submit(stores, 0, "svc/c", task="Other")

    first = store.claim_next_job(TASK, "w1", 100)
    assert first is not None and first.id == a1.id
    assert (first.status, first.worker, first.started) == (jobs.EXECUTING, "w1", 100)
    second = store.claim_next_job(TASK, "w2", 101)
    assert second is not None and second.id == b1.id  # a2 waits for a1
    third = store.claim_next_job(TASK, "w2", 102)
    assert third is not None and third.id == free.id
    assert store.claim_next_job(TASK, "w3", 103) is None
    store.update_job(transition(first, jobs.SUCCEEDED, 104), expected_status=jobs.EXECUTING)
    fourth = store.claim_next_job(TASK, "w3", 105)
    assert fourth is not None and fourth.id == a2.id
    claimed = store.claim_next_job("Other", "w1", 106)
    assert claimed is not None and claimed.id == other_task.id


def test_concurrent_claims_take_each_job_exactly_once(stores: StoreSet) -> None:
    ids = {submit(stores, n).id for n in range(40)}
    taken: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := stores.jobs.claim_next_job(TASK, name, 1)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)


def test_jobs_of_silent_workers_go_back_to_the_queue(stores: StoreSet) -> None:
    store = stores.jobs
    kept = submit(stores, 1, "s/alive")
    lost = submit(stores, 2, "s/dead")
    cancelled = submit(stores, 3, "s/cancel")
    for job, worker in ((kept, "alive"), (lost, "dead"), (cancelled, "dead")):
        store.update_job(
            transition(job, jobs.EXECUTING, 10, worker=worker), expected_status=jobs.SUBMITTED
        )
    store.update_job(
        transition(store.get_job(cancelled.id), jobs.CANCELLING, 11),
        expected_status=jobs.EXECUTING,
    )
    store.heartbeat("dead", 50)
    store.heartbeat("alive", 50)
    store.heartbeat("alive", 200)
    store.heartbeat("alive", 150)  # a late beat never moves the clock back
    assert store.requeue_orphans(stale_before=40, now=300) == []

    assert store.requeue_orphans(stale_before=100, now=300) == [lost.id]
    back = store.get_job(lost.id)
    assert (back.status, back.worker) == (jobs.SUBMITTED, None)
    assert back.messages and back.messages[-1].type == "esriJobMessageTypeInformative"
    assert store.get_job(cancelled.id).status == jobs.CANCELLED
    assert store.get_job(kept.id).status == jobs.EXECUTING
    again = store.claim_next_job(TASK, "new", 301)
    assert again is not None and again.id == lost.id


def test_a_job_that_keeps_stopping_its_worker_fails(stores: StoreSet) -> None:
    store = stores.jobs
    job = submit(stores, 1)
    outcomes: list[str] = []
    for n in range(10):
        claimed = store.claim_next_job(TASK, f"w{n}", 10 * n)
        if claimed is None:
            break
        store.requeue_orphans(stale_before=10 * n + 5, now=10 * n + 6)
        outcomes.append(store.get_job(job.id).status)
    assert outcomes[-1] == jobs.FAILED and set(outcomes[:-1]) == {jobs.SUBMITTED}
    assert store.get_job(job.id).finished is not None


def test_finished_jobs_are_deleted_after_retention(stores: StoreSet) -> None:
    store = stores.jobs
    old, new, open_ = submit(stores, 1), submit(stores, 2), submit(stores, 3)
    store.update_job(transition(old, jobs.CANCELLED, 10), expected_status=jobs.SUBMITTED)
    store.update_job(transition(new, jobs.CANCELLED, 30), expected_status=jobs.SUBMITTED)
    assert store.delete_jobs_finished_before(20) == 1
    with pytest.raises(NotFound):
        store.get_job(old.id)
    assert store.get_job(new.id).status == jobs.CANCELLED
    assert store.get_job(open_.id).status == jobs.SUBMITTED


# --- users ---------------------------------------------------------------------------------


def test_users_are_added_read_changed_and_removed(stores: StoreSet) -> None:
    users = stores.users
    users.add_user(User("Ops", "administrator", "hash-1", created=5))
    users.add_user(User("ops", "user", "hash-2"))  # names are case-sensitive
    users.add_user(User("bob", "publisher", "hash-3"))
    with pytest.raises(AlreadyExists):
        users.add_user(User("Ops", "user", "x"))
    with pytest.raises(InvalidParameter):
        users.add_user(User("bad name", "user", "x"))
    with pytest.raises(InvalidParameter):
        users.add_user(User("carol", "root", "x"))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter):
        users.add_user(User("carol", "user", ""))
    assert users.get_user("Ops").created == 5 and users.get_user("ops").created is not None
    assert [u.username for u in users.list_users()] == ["Ops", "bob", "ops"]

    users.save_user(User("ops", "publisher", "hash-9", token_epoch=3, disabled=True))
    got = users.get_user("ops")
    assert (got.role, got.password_hash, got.token_epoch, got.disabled) == (
        "publisher",
        "hash-9",
        3,
        True,
    )
    with pytest.raises(NotFound):
        users.save_user(User("nobody", "user", "x"))
    users.remove_user("ops")
    with pytest.raises(NotFound):
        users.get_user("ops")
    with pytest.raises(NotFound):
        users.remove_user("ops")


# --- sign-in attempts ---------------------------------------------------------------------


def test_signin_attempts_are_limited_per_user_and_address(stores: StoreSet) -> None:
    s = stores.signins
    window, limit = 1000, 2
    assert s.begin("ops", "1.2.3.4", 100, window, limit) == 0
    assert s.begin("ops", "1.2.3.4", 200, window, limit) == 0
    assert s.begin("ops", "1.2.3.4", 300, window, limit) == 800  # the one at 100 leaves at 1100
    assert s.begin("ops", "5.6.7.8", 300, window, limit) == 0  # another address
    assert s.begin("Ops", "1.2.3.4", 300, window, limit) == 0  # another user
    assert s.begin("ops", "1.2.3.4", 1100, window, limit) == 0  # 100 has left the window
    assert s.begin("ops", "1.2.3.4", 1150, window, limit) == 50
    s.succeeded("ops", "1.2.3.4")
    assert s.begin("ops", "1.2.3.4", 1150, window, limit) == 0
