"""Jobs survive restarts, and a job whose process died is finished or failed — never stuck."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.adapters.catalog.jobs import MAX_RESTARTS, RESTARTED
from livemosaic.core import jobs
from livemosaic.core.jobs import Job, new_job_id
from tests.rest.secure import (
    TASK,
    ServeProcess,
    bearer,
    messages,
    prepare_site,
    refresh,
    sign_in,
    wait_job,
)

INPUTS = {
    "serviceName": "live",
    "serviceType": "ImageServer",
    "serviceFolder": "Live",
    "refreshOptions": "",
}


def stores_of(data_dir: Path) -> Stores:
    return open_stores(f"sqlite:///{(data_dir / 'catalog.db').resolve()}")


def orphan(store: Stores, worker: str, *, restarts: int = 0, key: str = "live/live") -> Job:
    """A job left executing by ``worker``, as a process that died mid-job leaves it."""
    now = int(time.time() * 1000)
    notes = tuple(jobs.info(RESTARTED) for _ in range(restarts))
    job = Job(
        id=new_job_id(), task="Refresh Service", status=jobs.EXECUTING, owner="pub1",
        inputs=INPUTS, created=now - 5000, updated=now - 4000, service_key=key,
        messages=(jobs.info("Start Time: (before the crash)"), *notes), worker=worker,
        started=now - 4000,
    )  # fmt: skip
    return store.jobs.create_job(job)


def test_orphaned_jobs_are_rerun_or_failed_on_start(shared_data: Path, tmp_path: Path) -> None:
    data_dir = prepare_site(tmp_path / "site", shared_data)
    store = stores_of(data_dir)
    try:
        store.jobs.heartbeat("dead-worker", int(time.time() * 1000) - 120_000)  # silent for 2 min
        rerun = orphan(store, "dead-worker")
        gave_up = orphan(store, "dead-worker", restarts=MAX_RESTARTS, key="live/ndvi")
        never_seen = orphan(store, "worker-without-heartbeat", key="/static")
    finally:
        store.close()
    server = ServeProcess(data_dir, shared_data, tmp_path / "serve.log")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=30) as c:
            pub = bearer(sign_in(c, "pub1"))
            done = wait_job(c, pub, rerun.id, timeout=15)
            assert done["jobStatus"] == "esriJobSucceeded", done
            assert RESTARTED in messages(done)
            assert done["results"] == {"refreshResults": {"paramUrl": "results/refreshResults"}}
            failed = wait_job(c, pub, gave_up.id, timeout=15)
            assert failed["jobStatus"] == "esriJobFailed"
            assert any("stopped" in m and "not run again" in m for m in messages(failed))
            other = wait_job(c, pub, never_seen.id, timeout=15)
            assert other["jobStatus"] in (
                "esriJobSucceeded",
                "esriJobFailed",
            )  # finished, not stuck
    finally:
        server.stop()


def test_a_job_of_a_killed_server_is_finished_by_the_next_one(
    shared_data: Path, tmp_path: Path
) -> None:
    """A real process holds the job, heartbeats, and is SIGKILLed; the next server finishes it."""
    data_dir = prepare_site(tmp_path / "site", shared_data)
    first = ServeProcess(data_dir, shared_data, tmp_path / "first.log")
    first.wait_ready()
    with sqlite3.connect(data_dir / "catalog.db") as conn:
        (worker,) = conn.execute("SELECT worker FROM job_workers").fetchone()
    conn.close()
    store = stores_of(data_dir)
    try:
        job = orphan(store, worker)  # "executing" in the first server's name
    finally:
        store.close()
    first.kill()
    second = ServeProcess(data_dir, shared_data, tmp_path / "second.log")
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.base, timeout=30) as c:
            pub = bearer(sign_in(c, "pub1"))
            # the dead worker's heartbeat must first go stale (15 s), then the job runs again
            done = wait_job(c, pub, job.id, timeout=45)
            assert done["jobStatus"] == "esriJobSucceeded", done
            assert RESTARTED in messages(done)
    finally:
        second.stop()


def test_finished_jobs_survive_a_restart(shared_data: Path, tmp_path: Path) -> None:
    data_dir = prepare_site(tmp_path / "site", shared_data)
    first = ServeProcess(data_dir, shared_data, tmp_path / "first.log")
    try:
        first.wait_ready()
        with httpx.Client(base_url=first.base, timeout=30) as c:
            token = sign_in(c, "pub1")
            job = refresh(c, bearer(token), "live", "Live", refreshOptions='{"force": true}')
            assert job["jobStatus"] == "esriJobSucceeded"
            result = c.get(
                f"{TASK}/jobs/{job['jobId']}/results/refreshResults",
                params={"f": "json"},
                headers=bearer(token),
            ).json()
    finally:
        first.kill()  # no clean shutdown
    second = ServeProcess(data_dir, shared_data, tmp_path / "second.log")
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.base, timeout=30) as c:
            # the token is still good (same server secret), the job is still there
            again = c.get(
                f"{TASK}/jobs/{job['jobId']}", params={"f": "json"}, headers=bearer(token)
            ).json()
            assert again == job
            assert (
                c.get(
                    f"{TASK}/jobs/{job['jobId']}/results/refreshResults",
                    params={"f": "json"},
                    headers=bearer(token),
                ).json()
                == result
            )
            # and the refreshed snapshot is what the restarted server publishes
            info = c.get("/arcgis/rest/services/Live/live/ImageServer", params={"f": "json"})
            assert (
                int(info.headers["X-LiveMosaic-Service-Version"])
                == json.loads(result["value"])["generation"]
            )
    finally:
        second.stop()
