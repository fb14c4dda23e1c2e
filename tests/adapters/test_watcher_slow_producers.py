"""Slow producers and the quarantine: no file that is still being written is ever lost.

A producer is a separate process that writes a real raster into the watched folder in
chunks and holds the file open in between; the test tells it when to write the next chunk,
once the watcher has looked at the half-written file (the pauses last longer than the settle
time, by construction rather than by sleeping).
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import pytest

from livemosaic.adapters.watch import FolderWatcher, open_for_writing
from livemosaic.core.ports import ItemQuery
from tests.adapters.watching import Env, put, wait_until, watch_env

SCENE = "imagery/RGB.byte.tif"  # a strip GeoTIFF whose directory is at its end
TIMEOUT = 30.0  # generous: a shared machine

PRODUCER = r"""
import sys
src, dst, chunks, preallocate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
data = open(src, "rb").read()
size = -(-len(data) // chunks)
with open(dst, "wb") as fh:
    if preallocate:
        fh.truncate(len(data))  # full size at once, zeros: only the mtime moves later
    for i in range(chunks):
        if i:
            sys.stdin.readline()  # the test says when to go on
        fh.seek(i * size)
        fh.write(data[i * size : (i + 1) * size])
        fh.flush()
        print("wrote", i, flush=True)
print("closed", flush=True)
"""


class Producer:
    """A process writing ``source`` to ``target`` in chunks, one chunk per :meth:`write`."""

    def __init__(self, source: Path, target: Path, chunks: int, *, preallocate: bool = False):
        self.chunks = chunks
        self.written = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, str(source), str(target), str(chunks)]
            + ["1" if preallocate else "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())

    def _expect(self, line: str) -> None:
        try:
            got = self._lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"the producer did not say {line!r}") from None
        assert got == line, f"the producer said {got!r}, not {line!r}"

    def write(self) -> None:
        """Write the next chunk (the last one also closes the file)."""
        assert self.proc.stdin is not None
        if self.written:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        self._expect(f"wrote {self.written}")
        self.written += 1
        if self.written == self.chunks:
            self._expect("closed")
            assert self.proc.wait(timeout=TIMEOUT) == 0

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def looks(watcher: FolderWatcher, path: Path) -> int:
    """How many batches found ``path`` unfit (deferred or quarantined) so far."""
    name = str(path)
    return sum(
        (name in r.deferred) + any(p == name for p, _ in r.quarantined)
        for r in list(watcher.reports)
    )


def eventually(check: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[Env]:
    with watch_env(tmp_path) as e:
        yield e


@pytest.fixture(params=["writer seen", "writer unseen"])
def producer_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """Both ways a paused writer can go: its open descriptor is seen (a local process), or
    not (a writer on another machine: the file is quarantined and must come back)."""
    with watch_env(tmp_path, open_for_writing if request.param == "writer seen" else None) as e:
        yield e


def produce_slowly(env: Env, watcher: FolderWatcher, producer: Producer, target: Path) -> None:
    """Let the producer write chunk after chunk, each pause lasting until the watcher has
    looked at the half-written file."""
    for chunk in range(producer.chunks):
        seen = looks(watcher, target)
        producer.write()
        if chunk < producer.chunks - 1:
            assert eventually(lambda n=seen: looks(watcher, target) > n), (
                f"the watcher did not look at the half-written file after chunk {chunk + 1} "
                f"(journal: {env.state(str(target))}; "
                f"quarantine: {sorted(p.name for p in env.folder.glob('.quarantine/*'))})"
            )


def added_once(
    env: Env, watcher: FolderWatcher, target: Path, size: int, quarantine: Path | None = None
) -> None:
    """``target`` is in the catalog exactly once, complete, where it arrived; the quarantine
    holds nothing; a rescan changes none of it."""
    env.wait_added(str(target))
    watcher.rescan_now()
    assert watcher.wait_idle(timeout=TIMEOUT)
    items = [i for i in env.catalog.find_items("d", ItemQuery()) if i.path == str(target)]
    assert [i.file_size for i in items] == [size]
    assert sum(str(target) in r.files_added for r in watcher.reports) == 1
    assert target.stat().st_size == size
    qdir = quarantine or env.folder / ".quarantine"
    assert not [p for p in qdir.glob("**/*") if p.is_file()]
    assert env.journal.entries("d", "quarantined") == []


def quarantined_meanwhile(env: Env, watcher: FolderWatcher, target: Path) -> bool:
    return any(str(target) in r.moved for r in list(watcher.reports))


def test_a_slow_producer_s_file_is_ingested_not_lost(producer_env: Env, shared_data: Path) -> None:
    env = producer_env
    watcher = env.watch()  # settle 0.3 s: every pause below lasts longer
    target = env.folder / "slow.tif"
    with Producer(shared_data / SCENE, target, chunks=3) as producer:
        produce_slowly(env, watcher, producer, target)
    added_once(env, watcher, target, (shared_data / SCENE).stat().st_size)
    # seen, the half-written file was only deferred; unseen, it went to the quarantine and
    # came back (both paths are exercised, not skipped)
    assert quarantined_meanwhile(env, watcher, target) is (env.pipeline.writers is None)


def test_a_file_corrupt_while_written_is_taken_once_complete(
    producer_env: Env, shared_data: Path
) -> None:
    env = producer_env
    watcher = env.watch()
    target = env.folder / "prealloc.tif"
    size = (shared_data / SCENE).stat().st_size
    with Producer(shared_data / SCENE, target, chunks=3, preallocate=True) as producer:
        produce_slowly(env, watcher, producer, target)  # full size from the start: only
        # the mtime moves, and the content is not a raster until the end
    added_once(env, watcher, target, size)
    assert quarantined_meanwhile(env, watcher, target) is (env.pipeline.writers is None)


def test_a_quarantine_folder_elsewhere_is_followed_as_well(
    tmp_path: Path, shared_data: Path
) -> None:
    with watch_env(tmp_path, None) as env:  # a writer on another machine: never seen
        rejected = tmp_path / "data" / "rejected"  # outside the watched folder
        watcher = env.watch(quarantine_dir=rejected, recursive=False)
        target = env.folder / "slow.tif"
        with Producer(shared_data / SCENE, target, chunks=2) as producer:
            produce_slowly(env, watcher, producer, target)
        added_once(env, watcher, target, (shared_data / SCENE).stat().st_size, rejected)
        assert quarantined_meanwhile(env, watcher, target)
        moves = [r.moved[str(target)][0] for r in watcher.reports if str(target) in r.moved]
        assert moves and all(Path(m).parent == rejected for m in moves)


def test_a_broken_stable_file_stays_quarantined_with_its_reason(
    env: Env, shared_data: Path
) -> None:
    watcher = env.watch()
    bad = Path(put(shared_data, "bad/truncated.tif", env.folder, "broken.tif"))
    wait_until(lambda: env.state(str(bad)) == "quarantined", what="quarantine")
    moved = env.folder / ".quarantine" / "broken.tif"
    (entry,) = env.journal.entries("d", "quarantined")
    assert entry.moved_to == str(moved) and "truncated" in entry.reason
    assert watcher.wait_idle(timeout=TIMEOUT)  # the event of the move itself came and went
    batches = watcher.batches
    watcher.rescan_now()
    assert watcher.wait_idle(timeout=TIMEOUT)
    assert watcher.batches == batches, "an unchanged quarantined file was read again"
    assert moved.exists() and not bad.exists()
    assert env.journal.entries("d", "quarantined") == [entry]


def test_a_quarantined_file_replaced_in_the_quarantine_is_ingested_once(
    env: Env, shared_data: Path
) -> None:
    watcher = env.watch()
    bad = Path(put(shared_data, "bad/truncated.tif", env.folder, "scene.tif"))
    moved = env.folder / ".quarantine" / "scene.tif"
    wait_until(lambda: env.state(str(bad)) == "quarantined" and moved.exists(), what="move")
    shutil.copyfile(shared_data / "imagery/cogeo.tif", moved)  # fixed where it lies
    added_once(env, watcher, bad, (shared_data / "imagery/cogeo.tif").stat().st_size)


def test_a_quarantined_file_delivered_again_is_ingested_once(env: Env, shared_data: Path) -> None:
    watcher = env.watch()
    bad = Path(put(shared_data, "bad/truncated.tif", env.folder, "scene.tif"))
    moved = env.folder / ".quarantine" / "scene.tif"
    wait_until(lambda: env.state(str(bad)) == "quarantined" and moved.exists(), what="move")
    put(shared_data, "imagery/cogeo.tif", env.folder, "scene.tif")  # the producer tries again
    env.wait_added(str(bad))
    watcher.rescan_now()
    assert watcher.wait_idle(timeout=TIMEOUT)
    items = [i for i in env.catalog.find_items("d", ItemQuery()) if i.path == str(bad)]
    assert len(items) == 1
    assert sum(str(bad) in r.files_added for r in watcher.reports) == 1
    # the old broken copy stays in the quarantine; changed now, it cannot take the name back
    with moved.open("ab") as fh:
        fh.write(b"more")
    watcher.notify([moved])
    watcher.rescan_now()
    assert watcher.wait_idle(timeout=TIMEOUT)
    assert moved.exists() and len(env.catalog.find_items("d", ItemQuery())) == 1
