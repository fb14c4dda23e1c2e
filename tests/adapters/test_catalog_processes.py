"""Several processes and threads on one SQLite catalog: readers never see half a write."""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from pathlib import Path

from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.core.models import MosaicDataset
from livemosaic.core.ports import ItemQuery

from .items import BATCH, batch_items, check_snapshot, reader_loop, writer_loop

DS = "live"
BATCHES = 40


def expected_count(batches: int) -> int:
    """Items left after ``writer_loop``: every fifth batch removes an earlier one."""
    return (batches - batches // 5) * BATCH


def test_writers_and_readers_in_separate_processes(tmp_path: Path) -> None:
    db = str(tmp_path / "catalog.db")
    setup = SqliteCatalog(db)
    setup.create_dataset(MosaicDataset(DS, "EPSG:3857"))
    setup.close()

    ctx = mp.get_context("spawn")
    stop, go = ctx.Event(), ctx.Event()
    ready = [ctx.Event() for _ in range(2)]
    results: mp.Queue[tuple[int, int, list[str]]] = ctx.Queue()
    readers = [ctx.Process(target=reader_loop, args=(db, DS, r, stop, results)) for r in ready]
    writers = [
        ctx.Process(target=writer_loop, args=(db, DS, prefix, BATCHES, go)) for prefix in ("a", "b")
    ]
    for p in readers + writers:
        p.start()
    for event in ready:
        assert event.wait(30), "a reader process did not start"
    go.set()

    # a reader thread in this process too, on its own store
    local = SqliteCatalog(db)
    thread_problems: list[str] = []
    thread_rounds = 0

    def read_here() -> None:
        nonlocal thread_rounds
        while not stop.is_set():
            thread_problems.extend(check_snapshot(local, DS))
            thread_rounds += 1

    reader_thread = threading.Thread(target=read_here)
    reader_thread.start()
    try:
        for w in writers:
            w.join(timeout=60)
            assert w.exitcode == 0, f"writer failed with exit code {w.exitcode}"
    finally:
        stop.set()
        reader_thread.join(timeout=30)
    outcomes = []
    for _ in readers:
        try:
            outcomes.append(results.get(timeout=30))
        except queue.Empty:  # pragma: no cover - reported by the assertion below
            break
    for proc in readers:
        proc.join(timeout=30)
        assert proc.exitcode == 0

    assert len(outcomes) == len(readers)
    for rounds, versions, problems in outcomes:
        assert problems == []
        assert rounds >= 5
        assert versions > 3  # the reads really overlapped the writes
    assert thread_problems == []
    assert thread_rounds > 0

    final = local.summary(DS)
    assert final.item_count == 2 * expected_count(BATCHES)
    assert len(local.find_items(DS, ItemQuery())) == final.item_count
    history = local.history(DS, limit=1000)
    assert sum(1 for h in history if h.operation == "add") == 2 * BATCHES
    local.close()


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = SqliteCatalog(tmp_path / "catalog.db")
    store.create_dataset(MosaicDataset(DS, ""))
    stop = threading.Event()
    problems: list[str] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                problems.extend(check_snapshot(store, DS))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    def write(prefix: str) -> None:
        try:
            for b in range(25):
                store.add_items(DS, batch_items(prefix, b))
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    writers = [threading.Thread(target=write, args=(p,)) for p in ("x", "y")]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    stop.set()
    for t in readers:
        t.join(timeout=60)
    assert errors == []
    assert problems == []
    assert store.summary(DS).item_count == 2 * 25 * BATCH
    store.close()
