"""Files delivered complete — renamed into the folder, or with their marker — are taken without
waiting out the settle time; files written in place still wait for it.

The settle time in these tests is long (30 s) so that a file taken within a few seconds can
only have been taken by the delivery path; the written-in-place checks use a shorter one and
only assert that the file was NOT taken early (a lower bound, which a slow machine cannot
break).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from livemosaic.core.ports import ItemQuery
from tests.adapters.watching import Env, put, wait_until, watch_env

LONG_SETTLE = 30.0
PROMPT = 15.0  # well before LONG_SETTLE, generous for a shared machine
SAMPLE = "size/byte.tif"


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[Env]:
    with watch_env(tmp_path) as e:
        yield e


def added_within(env: Env, path: str, seconds: float) -> float:
    """Seconds until ``path`` is journaled as added (fails after ``seconds``)."""
    t0 = time.monotonic()
    wait_until(lambda: env.state(path) == "added", timeout=seconds, what=f"{path} added")
    return time.monotonic() - t0


def test_a_file_renamed_in_is_taken_without_the_settle_wait(env: Env, shared_data: Path) -> None:
    watcher = env.watch(settle_seconds=LONG_SETTLE)
    t0 = time.monotonic()
    path = put(shared_data, SAMPLE, env.folder, "renamed.tif")  # x.tif.part, then renamed
    wait_until(lambda: env.state(path) == "added", timeout=PROMPT, what="the renamed file")
    assert time.monotonic() - t0 < LONG_SETTLE / 2
    assert watcher.batches == 1 and watcher.reports[-1].files_added == [path]


def test_a_file_moved_in_from_outside_the_folder_is_taken_at_once(
    env: Env, shared_data: Path, tmp_path: Path
) -> None:
    env.watch(settle_seconds=LONG_SETTLE)
    staging = tmp_path / "data" / "staging"  # same filesystem, outside the watched tree
    staging.mkdir()
    staged = staging / "outside.tif"
    shutil.copyfile(shared_data / SAMPLE, staged)
    target = env.folder / "outside.tif"
    os.rename(staged, target)
    added_within(env, str(target), PROMPT)


def test_a_file_written_in_place_still_waits_for_the_settle_time(
    env: Env, shared_data: Path
) -> None:
    settle = 3.0
    env.watch(settle_seconds=settle)
    target = env.folder / "in_place.tif"
    t0 = time.monotonic()
    shutil.copyfile(shared_data / SAMPLE, target)  # created and written where it lies
    wait_until(lambda: env.state(str(target)) == "added", what="the file written in place")
    assert time.monotonic() - t0 >= settle


def test_a_file_renamed_in_while_still_open_for_writing_settles(
    env: Env, shared_data: Path
) -> None:
    settle = 3.0
    env.watch(settle_seconds=settle)
    part = env.folder / "held.tif.part"
    target = env.folder / "held.tif"
    with part.open("wb") as fh:
        fh.write((shared_data / SAMPLE).read_bytes())
        fh.flush()
        os.rename(part, target)  # renamed before its writer closed it
        renamed = time.monotonic()
        time.sleep(1.5)  # the delivery path would have taken it by now
        assert env.state(str(target)) is None, "a file still open for writing was taken"
    wait_until(lambda: env.state(str(target)) == "added", what="the file once closed")
    assert time.monotonic() - renamed >= settle  # it waited for the settle time


def test_a_marker_delivers_a_file_at_once(env: Env, shared_data: Path) -> None:
    env.watch(settle_seconds=LONG_SETTLE, marker_mode=True)
    target = env.folder / "marked.tif"
    shutil.copyfile(shared_data / SAMPLE, target)  # written in place: the marker says when
    time.sleep(0.5)
    assert env.state(str(target)) is None
    Path(str(target) + ".done").touch()
    added_within(env, str(target), PROMPT)


def test_a_catalogued_file_renamed_within_the_folder_is_taken_once(
    env: Env, shared_data: Path
) -> None:
    watcher = env.watch(settle_seconds=LONG_SETTLE)
    first = put(shared_data, SAMPLE, env.folder, "first.tif")
    added_within(env, first, PROMPT)
    second = str(env.folder / "second.tif")
    os.rename(first, second)
    added_within(env, second, PROMPT)
    watcher.rescan_now()
    assert watcher.wait_idle(timeout=PROMPT)
    paths = [i.path for i in env.catalog.find_items("d", ItemQuery())]
    assert paths.count(second) == 1
    assert sum(second in r.files_added for r in watcher.reports) == 1


def test_a_file_found_by_a_rescan_waits_for_the_settle_time(env: Env, shared_data: Path) -> None:
    first = env.watch()
    first.stop()  # no events while it is down: the start-up scan finds the file
    path = put(shared_data, SAMPLE, env.folder, "while_down.tif")
    settle = 3.0
    t0 = time.monotonic()
    env.watch(settle_seconds=settle)
    wait_until(lambda: env.state(path) == "added", what="the file found by the scan")
    assert time.monotonic() - t0 >= settle


def test_a_burst_of_renamed_files_is_one_batch_and_one_refresh(
    env: Env, shared_data: Path, tmp_path: Path
) -> None:
    env.publish()
    watcher = env.watch(
        settle_seconds=LONG_SETTLE, batch_window_seconds=10.0, batch_quiet_seconds=1.0
    )
    staging = tmp_path / "data" / "burst"
    staging.mkdir()
    names = [f"burst_{i:03d}.tif" for i in range(60)]
    for name in names:
        shutil.copyfile(shared_data / SAMPLE, staging / name)
    for name in names:  # delivered together, as fast as renames go
        os.rename(staging / name, env.folder / name)
    paths = [str(env.folder / n) for n in names]
    wait_until(
        lambda: all(env.state(p) == "added" for p in paths), timeout=PROMPT, what="the burst"
    )
    env.wait_jobs(1, watcher)
    assert watcher.batches == 1
    (report,) = watcher.reports
    assert sorted(report.files_added) == sorted(paths) and report.refreshed == ["W/S"]


def test_a_burst_larger_than_a_batch_has_one_refresh_per_batch(
    env: Env, shared_data: Path, tmp_path: Path
) -> None:
    env.publish()
    watcher = env.watch(settle_seconds=LONG_SETTLE, max_batch_files=20, batch_quiet_seconds=1.0)
    staging = tmp_path / "data" / "burst"
    staging.mkdir()
    names = [f"burst_{i:03d}.tif" for i in range(50)]
    for name in names:
        shutil.copyfile(shared_data / SAMPLE, staging / name)
    for name in names:
        os.rename(staging / name, env.folder / name)
    paths = [str(env.folder / n) for n in names]
    wait_until(
        lambda: all(env.state(p) == "added" for p in paths), timeout=PROMPT, what="the burst"
    )
    assert watcher.wait_idle(timeout=PROMPT)
    assert watcher.batches == 3  # 20 + 20 + 10
    assert sum(len(r.files_added) for r in watcher.reports) == 50
    assert all(len(r.refreshed) <= 1 for r in watcher.reports)
    assert env.job_count() == 1  # the first batch's job still waits: no second one queued


def test_a_folder_moved_in_delivers_its_files_at_once(
    env: Env, shared_data: Path, tmp_path: Path
) -> None:
    env.watch(settle_seconds=LONG_SETTLE)
    staging = tmp_path / "data" / "staging"
    paths = [put(shared_data, SAMPLE, staging, f"f{i}.tif") for i in range(3)]
    os.rename(staging, env.folder / "batch1")
    for p in paths:
        added_within(env, str(env.folder / "batch1" / Path(p).name), PROMPT)


def test_a_polled_folder_settles_renamed_files_too(env: Env, shared_data: Path) -> None:
    settle = 3.0
    env.watch(settle_seconds=settle, polling=True)
    part = env.folder / "polled.tif.part"
    shutil.copyfile(shared_data / SAMPLE, part)
    time.sleep(2.5)  # polled (every second) under its temporary name: the rename is a move
    path = str(env.folder / "polled.tif")
    t0 = time.monotonic()
    os.rename(part, path)
    wait_until(lambda: env.state(path) == "added", what="the polled file")
    assert time.monotonic() - t0 >= settle  # a poll cannot tell a rename from a new file
