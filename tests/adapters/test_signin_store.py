"""Failed sign-in attempts in the SQLite catalog (migration 0005), shared by processes.

Several real processes count attempts of one key in one catalog file at the same time; the
store must grant exactly ``limit`` of them (the count and the insert are one transaction).
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.core.signin import SigninThrottle
from tests.figures import record

LIMIT = 5
WINDOW_MS = 600_000


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    """The catalog database of one test (another module runs these tests on PostgreSQL)."""
    return url(tmp_path / "catalog.db")


def _hammer(db: str, attempts: int, start: float, granted: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    stores = open_stores(db)
    try:
        while time.time() < start:  # start together
            time.sleep(0.001)
        count = 0
        for _ in range(attempts):
            now = int(time.time() * 1000)
            if stores.signins.begin("admin", "10.0.0.1", now, WINDOW_MS, LIMIT) == 0:
                count += 1
        granted.put(count)
    finally:
        stores.close()


def test_processes_share_one_count(catalog_url: str) -> None:
    db = catalog_url
    open_stores(db).close()  # migrate once
    processes, attempts = 4, 10
    ctx = multiprocessing.get_context("spawn")
    granted: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = time.time() + 2.0
    workers = [
        ctx.Process(target=_hammer, args=(db, attempts, start, granted)) for _ in range(processes)
    ]
    for w in workers:
        w.start()
    counts = [granted.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    # per-process counting would have granted LIMIT in each process
    assert sum(counts) == LIMIT, counts
    record(
        "signin_throttle_processes",
        processes=processes,
        attempts=processes * attempts,
        allowed=sum(counts),
        limit=LIMIT,
    )


def test_window_success_and_purge(catalog_url: str) -> None:
    stores = open_stores(catalog_url)
    try:
        store = stores.signins
        assert [store.begin("ops", "a", t, 1000, 2) for t in (0, 100)] == [0, 0]
        assert store.begin("ops", "a", 500, 1000, 2) == 500  # the first leaves the window at 1000
        assert store.begin("ops", "b", 500, 1000, 2) == 0  # another address
        assert store.begin("ops", "a", 1000, 1000, 2) == 0
        store.succeeded("ops", "a")
        assert [store.begin("ops", "a", 1001, 1000, 2) for _ in range(2)] == [0, 0]
        # attempts that left the window are deleted, not only ignored
        store.begin("x", "y", 10_000, 1000, 2)
        with stores.catalog.pool.read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT username, address, at FROM signin_attempts").fetchall()
        assert [tuple(r) for r in rows] == [("x", "y", 10_000)]
        throttle = SigninThrottle(store, 1, 60, clock=lambda: 10.5)  # 500 ms later
        assert throttle.begin("x", "y") > 0 and throttle.begin("x", "z") == 0
    finally:
        stores.close()
