"""The SQLite job store: round trips, compare-and-set, the queue, orphans, retention —
and claims from many threads and processes at once."""

from __future__ import annotations

import multiprocessing as mp
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.adapters.catalog.connection import now_ms
from livemosaic.adapters.catalog.jobs import MAX_RESTARTS, RESTARTED
from livemosaic.core import jobs
from livemosaic.core.jobs import InvalidTransition, Job, new_job_id, transition
from livemosaic.core.ports import JobStore
from livemosaic.errors import AlreadyExists, NotFound

TASK = "Refresh Service"


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    """The catalog database of one test (another module runs these tests on PostgreSQL)."""
    return url(tmp_path / "catalog.db")


@pytest.fixture
def stores(catalog_url: str) -> Iterator[Stores]:
    s = open_stores(catalog_url)
    yield s
    s.close()


def make_job(service: str = "ocean/sst", created: int = 1000, task: str = TASK, **kw) -> Job:
    return Job(
        id=new_job_id(),
        task=task,
        status=jobs.SUBMITTED,
        owner=kw.pop("owner", "ops"),
        inputs=kw.pop(
            "inputs", {"serviceName": service.split("/")[-1], "serviceType": "ImageServer"}
        ),
        created=created,
        updated=created,
        service_key=service,
        **kw,
    )


def finish(store: JobStore, job: Job, now: int) -> Job:
    done = transition(job, jobs.SUCCEEDED, now, results={"refreshResults": "{}"})
    return store.update_job(done, expected_status=jobs.EXECUTING)


# -- single-process semantics ------------------------------------------------------------


def test_a_job_round_trips_exactly_and_survives_a_restart(catalog_url: str) -> None:
    s = open_stores(catalog_url)
    job = make_job(
        inputs={
            "serviceName": "Sentinel2",
            "serviceFolder": "Live",
            "refreshOptions": '{"force": true}',
        },
        results={"refreshResults": '{"changed": ["extent"]}', "nested": {"a": [1, 2.5, None, "é"]}},
        messages=(jobs.info("Start Time: 2025-01-01T10:00:00Z"), jobs.warning("ünïcode ✓")),
        worker="host:1:abc",
        started=1001,
        finished=None,
    )
    assert s.jobs.create_job(job) is job
    assert s.jobs.get_job(job.id) == job
    s.close()
    again = open_stores(catalog_url)
    try:
        loaded = again.jobs.get_job(job.id)
        assert loaded == job
        assert (
            isinstance(loaded.messages, tuple)
            and loaded.messages[1].type == "esriJobMessageTypeWarning"
        )
    finally:
        again.close()


def test_unknown_and_duplicate_jobs(stores: Stores) -> None:
    with pytest.raises(NotFound) as info:
        stores.jobs.get_job("jdoesnotexist")
    assert info.value.message == "Job not found."
    assert info.value.code == 404
    assert "jdoesnotexist" in str(info.value)
    job = stores.jobs.create_job(make_job())
    with pytest.raises(AlreadyExists):
        stores.jobs.create_job(replace(job, owner="someone else"))
    assert stores.jobs.get_job(job.id).owner == "ops"
    ghost = transition(make_job(), jobs.CANCELLED, 5)
    with pytest.raises(NotFound, match="does not exist"):
        stores.jobs.update_job(ghost, expected_status=jobs.SUBMITTED)


def test_update_is_compare_and_set(stores: Stores) -> None:
    store = stores.jobs
    job = store.create_job(make_job())
    claimed = store.claim_next_job(TASK, "w1", 2000)
    assert claimed is not None and claimed.id == job.id
    # a cancel racing with the claim: it still believes the job is submitted
    cancelled = transition(job, jobs.CANCELLED, 2001)
    with pytest.raises(InvalidTransition, match="another process"):
        store.update_job(cancelled, expected_status=jobs.SUBMITTED)
    assert store.get_job(job.id).status == jobs.EXECUTING
    # the runner, which knows the truth, wins
    cancelling = store.update_job(
        transition(claimed, jobs.CANCELLING, 2002), expected_status=jobs.EXECUTING
    )
    assert store.get_job(job.id) == cancelling
    # a move the job model forbids is refused before touching the database
    with pytest.raises(InvalidTransition, match="cannot become"):
        store.update_job(
            replace(cancelling, status=jobs.EXECUTING), expected_status=jobs.CANCELLING
        )
    final = store.update_job(
        transition(cancelling, jobs.CANCELLED, 2003), expected_status=jobs.CANCELLING
    )
    assert store.get_job(job.id) == final and final.finished == 2003


def test_claim_takes_the_oldest_submitted_job_of_its_task(stores: Stores) -> None:
    store = stores.jobs
    young = store.create_job(make_job("a/one", created=300))
    old = store.create_job(make_job("b/two", created=100))
    other_task = store.create_job(make_job("c/three", created=50, task="Other Task"))
    done = store.create_job(transition(make_job("d/four", created=10), jobs.CANCELLED, 20))
    first = store.claim_next_job(TASK, "w1", 500)
    assert first is not None and first.id == old.id
    assert (first.status, first.worker, first.started, first.updated) == (
        jobs.EXECUTING,
        "w1",
        500,
        500,
    )
    assert store.get_job(old.id) == first
    second = store.claim_next_job(TASK, "w2", 501)
    assert second is not None and second.id == young.id and second.worker == "w2"
    assert store.claim_next_job(TASK, "w1", 502) is None
    third = store.claim_next_job("Other Task", "w1", 503)
    assert third is not None and third.id == other_task.id
    assert store.get_job(done.id).status == jobs.CANCELLED


def test_jobs_of_one_service_never_run_together(stores: Stores) -> None:
    store = stores.jobs
    a1 = store.create_job(make_job("live/a", created=1))
    a2 = store.create_job(make_job("live/a", created=2))
    b1 = store.create_job(make_job("live/b", created=3))
    free1 = store.create_job(make_job("", created=4))
    free2 = store.create_job(make_job("", created=5))
    order = [store.claim_next_job(TASK, "w", 10 + i) for i in range(5)]
    ids = [j.id if j else None for j in order]
    # a2 waits for a1; jobs without a service are not serialised
    assert ids == [a1.id, b1.id, free1.id, free2.id, None]
    # a job being cancelled after it started still holds its service
    first = order[0]
    assert first is not None
    holding = store.update_job(
        transition(first, jobs.CANCELLING, 20), expected_status=jobs.EXECUTING
    )
    assert store.claim_next_job(TASK, "w", 21) is None
    store.update_job(transition(holding, jobs.CANCELLED, 22), expected_status=jobs.CANCELLING)
    nxt = store.claim_next_job(TASK, "w", 23)
    assert nxt is not None and nxt.id == a2.id


def test_orphans_are_requeued_cancelled_or_failed(stores: Stores) -> None:
    store = stores.jobs
    dead = store.create_job(make_job("s/dead", created=1))
    live = store.create_job(make_job("s/live", created=2))
    ghost = store.create_job(make_job("s/ghost", created=3))
    stopping = store.create_job(make_job("s/stopping", created=4))
    store.heartbeat("dead", 1000)
    store.heartbeat("live", 1000)
    for worker in ("dead", "live", "never-beat", "dead"):
        assert store.claim_next_job(TASK, worker, 1100) is not None
    store.update_job(
        transition(store.get_job(stopping.id), jobs.CANCELLING, 1200),
        expected_status=jobs.EXECUTING,
    )
    store.heartbeat("live", 5000)
    store.heartbeat("live", 4000)  # a late, older beat does not move it back
    requeued = store.requeue_orphans(stale_before=4500, now=6000)
    assert sorted(requeued) == sorted([dead.id, ghost.id])
    for job_id in requeued:
        job = store.get_job(job_id)
        assert job.status == jobs.SUBMITTED and job.worker is None and job.updated == 6000
        assert job.messages[-1] == jobs.info(RESTARTED)
    assert store.get_job(live.id).status == jobs.EXECUTING
    stopped = store.get_job(stopping.id)
    assert stopped.status == jobs.CANCELLED and stopped.finished == 6000
    assert store.requeue_orphans(stale_before=4500, now=6001) == []


def test_a_job_that_keeps_killing_its_process_is_failed(stores: Stores) -> None:
    store = stores.jobs
    job = store.create_job(make_job())
    for attempt in range(MAX_RESTARTS):
        assert store.claim_next_job(TASK, f"w{attempt}", 10 * attempt) is not None
        assert store.requeue_orphans(stale_before=10**9, now=10 * attempt + 5) == [job.id]
    assert store.claim_next_job(TASK, "last", 100) is not None
    assert store.requeue_orphans(stale_before=10**9, now=105) == []
    failed = store.get_job(job.id)
    assert failed.status == jobs.FAILED and failed.finished == 105
    assert failed.messages[-1].type == "esriJobMessageTypeError"
    assert "not run again" in failed.messages[-1].description


def test_finished_jobs_are_deleted_after_retention(stores: Stores) -> None:
    store = stores.jobs
    old = store.create_job(transition(make_job(created=1), jobs.CANCELLED, 100))
    recent = store.create_job(transition(make_job(created=2), jobs.FAILED, 200))
    waiting = store.create_job(make_job(created=3))
    running = store.claim_next_job(TASK, "w", 300)
    assert running is not None and running.id == waiting.id
    assert store.delete_jobs_finished_before(150) == 1
    with pytest.raises(NotFound):
        store.get_job(old.id)
    assert store.get_job(recent.id).status == jobs.FAILED
    assert store.delete_jobs_finished_before(10**12) == 1
    assert store.get_job(running.id).status == jobs.EXECUTING  # unfinished jobs stay


def test_a_version_1_catalog_gains_the_job_tables(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    open_stores(url(db)).close()
    conn = sqlite3.connect(db)
    conn.executescript(
        "DROP TABLE jobs; DROP TABLE job_workers; DROP TABLE users; "
        "DELETE FROM schema_version WHERE version = 2;"
    )
    conn.close()
    s = open_stores(url(db))
    try:
        job = s.jobs.create_job(make_job())
        assert s.jobs.get_job(job.id) == job
    finally:
        s.close()


# -- many claimers at once ----------------------------------------------------------------

SERVICES = ("live/a", "live/b", "other/c")
PER_SERVICE = 8
HOLD_SECONDS = 0.01


def _submit_all(store: JobStore) -> list[str]:
    ids = []
    for i in range(PER_SERVICE):
        for k, svc in enumerate(SERVICES):
            ids.append(store.create_job(make_job(svc, created=1000 + 10 * i + k)).id)
    return ids


def claim_loop(db: str, worker: str, ids: list[str], out, deadline: float, ready, go) -> None:
    """Claim and finish jobs until every job is finished; report (id, service, t0, t1)."""
    s = open_stores(db)
    ready.set()
    go.wait(60)  # all claimers start together
    try:
        while time.monotonic() < deadline:
            job = s.jobs.claim_next_job(TASK, worker, now_ms())
            if job is None:
                if all(s.jobs.get_job(i).is_terminal for i in ids):
                    return
                time.sleep(0.002)
                continue
            t0 = time.monotonic_ns()  # after the claim committed
            time.sleep(HOLD_SECONDS)
            t1 = time.monotonic_ns()  # before the finish commits
            out.put((job.id, job.service_key, worker, t0, t1))
            finish(s.jobs, job, now_ms())
    finally:
        s.close()


def check_runs(runs: list[tuple[str, str, str, int, int]], ids: list[str]) -> None:
    claimed = Counter(r[0] for r in runs)
    assert sorted(claimed) == sorted(ids)
    assert set(claimed.values()) == {1}, "a job was claimed twice"
    for svc in SERVICES:
        spans = sorted((t0, t1) for _, key, _, t0, t1 in runs if key == svc)
        assert len(spans) == PER_SERVICE
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start > end, f"two jobs of {svc} ran at the same time"
    assert len({r[2] for r in runs}) > 1, "only one claimer ever got work"


def test_threads_claim_each_job_once_and_serialise_services(catalog_url: str) -> None:
    db = catalog_url
    setup = open_stores(db)
    ids = _submit_all(setup.jobs)
    out: queue.Queue[tuple[str, str, str, int, int]] = queue.Queue()
    deadline = time.monotonic() + 60
    go = threading.Event()
    ready = [threading.Event() for _ in range(6)]
    threads = [
        threading.Thread(target=claim_loop, args=(db, f"t{i}", ids, out, deadline, r, go))
        for i, r in enumerate(ready)
    ]
    for t in threads:
        t.start()
    assert all(r.wait(30) for r in ready)
    go.set()
    for t in threads:
        t.join(timeout=90)
    runs = [out.get_nowait() for _ in range(out.qsize())]
    check_runs(runs, ids)
    assert all(setup.jobs.get_job(i).status == jobs.SUCCEEDED for i in ids)
    setup.close()


def test_processes_claim_each_job_once_and_serialise_services(catalog_url: str) -> None:
    db = catalog_url
    setup = open_stores(db)
    ids = _submit_all(setup.jobs)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    deadline = time.monotonic() + 60
    go = ctx.Event()
    ready = [ctx.Event() for _ in range(4)]
    procs = [
        ctx.Process(target=claim_loop, args=(db, f"p{i}", ids, out, deadline, r, go))
        for i, r in enumerate(ready)
    ]
    for p in procs:
        p.start()
    assert all(r.wait(60) for r in ready), "a claimer process did not start"
    go.set()
    runs: list[tuple[str, str, str, int, int]] = []
    while len(runs) < len(ids) and time.monotonic() < deadline + 30:
        try:
            runs.append(out.get(timeout=1))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    check_runs(runs, ids)
    assert all(setup.jobs.get_job(i).status == jobs.SUCCEEDED for i in ids)
    setup.close()


def hold_a_job(db: str, claimed) -> None:
    """Claim a job, say so, then hang (until killed) in the middle of it."""
    s = open_stores(db)
    s.jobs.heartbeat("doomed", now_ms())
    job = s.jobs.claim_next_job(TASK, "doomed", now_ms())
    if job is not None:
        claimed.set()
    time.sleep(120)


def test_a_job_of_a_killed_process_runs_again(catalog_url: str) -> None:
    db = catalog_url
    s = open_stores(db)
    job = s.jobs.create_job(make_job())
    ctx = mp.get_context("spawn")
    claimed = ctx.Event()
    proc = ctx.Process(target=hold_a_job, args=(db, claimed))
    proc.start()
    try:
        assert claimed.wait(30), "the child never claimed the job"
    finally:
        proc.kill()
        proc.join(timeout=30)
    stuck = s.jobs.get_job(job.id)
    assert stuck.status == jobs.EXECUTING and stuck.worker == "doomed"
    time.sleep(0.05)
    # the restarted server: it heartbeats, then puts back jobs of silent workers
    now = now_ms()
    s.jobs.heartbeat("restarted", now)
    assert s.jobs.requeue_orphans(stale_before=now - 1, now=now) == [job.id]
    again = s.jobs.claim_next_job(TASK, "restarted", now_ms())
    assert again is not None and again.id == job.id and again.worker == "restarted"
    done = finish(s.jobs, again, now_ms())
    assert s.jobs.get_job(job.id) == done and done.status == jobs.SUCCEEDED
    s.close()
