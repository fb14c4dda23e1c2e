"""The folder watcher on real folders, real rasters, the real catalog and job store."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.adapters.catalog.journal import SqliteIngestJournal
from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.jobs.runner import JobRunner
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.adapters.watch import FolderWatcher
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.pipeline import IngestPipeline, InProcessRefresh
from livemosaic.core.ports import ItemQuery
from livemosaic.core.publishing import Publisher
from livemosaic.core.refresh import Refresher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.watch_rules import Retention, WatchRule
from livemosaic.errors import InvalidParameter, PathNotAllowed

MODIS = "timeseries/modis_ndvi/TERRA_MODIS_012010_NDVI_{}.jp2"
MODIS_DATES = ("2013-09-14", "2013-10-16", "2013-11-17", "2013-12-19", "2014-01-17")


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


@dataclass
class Env:
    folder: Path
    stores: Stores
    catalog: SqliteCatalog
    journal: SqliteIngestJournal
    publisher: Publisher
    pipeline: IngestPipeline
    runner: JobRunner
    db: Path
    watchers: list[FolderWatcher] = field(default_factory=list)

    def rule(self, **changes: object) -> WatchRule:
        base = WatchRule(
            folder=self.folder,
            dataset="d",
            service="W/S",
            settle_seconds=0.3,
            batch_window_seconds=0.3,
            rescan_seconds=3600,  # only the start-up scan: events must do the rest
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def watch(self, **changes: object) -> FolderWatcher:
        watcher = FolderWatcher([self.rule(**changes)], self.pipeline, tick_seconds=0.02)
        self.watchers.append(watcher)
        watcher.start()
        assert watcher.wait_idle(timeout=20), "the watcher did not catch up"
        return watcher

    def state(self, path: str) -> str | None:
        entry = self.journal.lookup("d", [path]).get(path)
        return None if entry is None else entry.state

    def wait_added(self, *paths: str) -> None:
        wait_until(lambda: all(self.state(p) == "added" for p in paths), what=f"{paths} added")

    def job_count(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])

    def wait_jobs(self, count: int, watcher: FolderWatcher) -> None:
        """Wait until ``count`` refresh jobs were submitted and the batch that submits them
        is over: the pipeline journals a file as added before it requests the refresh."""
        wait_until(lambda: self.job_count() >= count, what=f"{count} refresh job(s)")
        assert watcher.wait_idle()
        assert self.job_count() == count

    def run_jobs(self) -> None:
        while self.runner.run_once():
            pass

    def publish(self) -> None:
        self.publisher.publish(
            ServiceDefinition(name="S", folder="W", dataset="d", properties={"hasLiveData": "true"})
        )


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[Env]:
    data = tmp_path / "data"
    folder = data / "incoming"
    folder.mkdir(parents=True)
    db = tmp_path / "catalog.db"
    stores = open_stores(f"sqlite:///{db}")
    catalog = stores.catalog
    assert isinstance(catalog, SqliteCatalog)
    source = RasterioSource([data])
    registry = ServiceRegistry()
    publisher = Publisher(catalog, registry, RasterioProjector())
    journal = SqliteIngestJournal(catalog)
    ingestor = Ingestor(catalog, source, [data])
    pipeline = IngestPipeline(
        catalog, source, journal, ingestor, InProcessRefresh(stores.jobs), registry
    )
    runner = JobRunner(stores.jobs, Refresher(catalog, publisher))
    ingestor.create_dataset("d", "EPSG:4326", time_pattern="%Y-%m-%d")
    e = Env(folder, stores, catalog, journal, publisher, pipeline, runner, db)
    yield e
    for watcher in e.watchers:
        watcher.stop()
    stores.close()


def put(shared: Path, rel: str, folder: Path, name: str | None = None) -> str:
    """Copy a sample in atomically: write ``name.part``, then rename."""
    target = folder / (name or Path(rel).name)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    shutil.copyfile(shared / rel, part)
    os.replace(part, target)
    return str(target)


def test_files_arriving_together_are_one_batch_and_one_refresh(env: Env, shared_data: Path) -> None:
    env.publish()
    watcher = env.watch()
    parts = []
    for rel in ("imagery/cogeo.tif", "timeseries/bcsd_obs_1999.nc", MODIS.format(MODIS_DATES[0])):
        part = env.folder / (Path(rel).name + ".part")
        shutil.copyfile(shared_data / rel, part)
        parts.append(part)
    time.sleep(0.6)  # longer than the settle time: .part files are never taken
    assert env.journal.entries("d") == [] and watcher.batches == 0
    paths = []
    for part in parts:
        final = str(part.with_suffix(""))
        os.replace(part, final)
        paths.append(final)
    env.wait_added(*paths)
    assert watcher.wait_idle()
    assert watcher.batches == 1
    (report,) = watcher.reports
    assert report.items_added == 1 + 24 + 1
    assert report.refreshed == ["W/S"]
    assert env.job_count() == 1
    assert {Path(e.path).suffix for e in env.journal.entries("d")} == {".tif", ".nc", ".jp2"}
    assert [h.operation for h in env.catalog.history("d")].count("add") == 1


def test_a_file_written_slowly_is_never_taken_half(env: Env, shared_data: Path) -> None:
    watcher = env.watch(settle_seconds=1.0)
    content = (shared_data / "imagery" / "cogeo.tif").read_bytes()
    path = env.folder / "slow.tif"
    chunk = len(content) // 10 + 1
    with path.open("wb") as fh:
        for start in range(0, len(content), chunk):
            fh.write(content[start : start + chunk])
            fh.flush()
            time.sleep(0.15)  # shorter pauses than the settle time
            assert env.state(str(path)) is None, "a half-written file was taken"
    env.wait_added(str(path))
    (item,) = env.catalog.find_items("d", ItemQuery())
    assert item.file_size == len(content)
    assert all(not r.quarantined for r in watcher.reports)


def test_marker_mode_waits_for_the_done_file(env: Env, shared_data: Path) -> None:
    env.watch(marker_mode=True)
    first = put(shared_data, "size/byte.tif", env.folder, "a.tif")
    second = put(shared_data, "size/byte.tif", env.folder, "b.tif")
    time.sleep(1.0)
    assert env.state(first) is None and env.state(second) is None
    Path(first + ".done").touch()  # x.tif.done
    env.wait_added(first)
    assert env.state(second) is None
    (env.folder / "b.done").touch()  # x.done
    env.wait_added(second)


def test_a_bad_file_is_quarantined_and_the_watcher_keeps_going(env: Env, shared_data: Path) -> None:
    watcher = env.watch()
    bad = put(shared_data, "bad/truncated.tif", env.folder, "scene.tif")
    wait_until(lambda: env.state(bad) == "quarantined", what="quarantine")
    moved = env.folder / ".quarantine" / "scene.tif"
    wait_until(moved.exists, what="the move")
    assert not os.path.exists(bad)
    (entry,) = env.journal.entries("d", "quarantined")
    assert "truncated" in entry.reason and entry.moved_to == str(moved)
    good = put(shared_data, "size/byte.tif", env.folder)
    env.wait_added(good)
    fixed = put(shared_data, "imagery/cogeo.tif", env.folder, "scene.tif")  # dropped again, fixed
    env.wait_added(fixed)
    assert env.catalog.summary("d").item_count == 2
    assert watcher.failures == 0


def test_record_mode_keeps_the_bad_file_in_place(env: Env, shared_data: Path) -> None:
    env.watch(quarantine="record")
    bad = put(shared_data, "bad/not_a_raster.tif", env.folder)
    wait_until(lambda: env.state(bad) == "quarantined", what="quarantine")
    assert os.path.exists(bad) and not (env.folder / ".quarantine").exists()


def test_retention_removes_old_items_and_triggers_a_refresh(env: Env, shared_data: Path) -> None:
    env.publish()
    watcher = env.watch(retention=Retention(keep_days=40))
    first = [put(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES[1:3]]
    env.wait_added(*first)  # Oct 16 and Nov 17: 32 days apart, both kept
    env.wait_jobs(1, watcher)
    assert env.catalog.summary("d").item_count == 2
    env.run_jobs()
    newest = put(shared_data, MODIS.format(MODIS_DATES[4]), env.folder)  # 2014-01-17
    env.wait_added(newest)
    env.wait_jobs(2, watcher)
    assert watcher.reports[-1].removed == 2 and watcher.reports[-1].refreshed == ["W/S"]
    env.run_jobs()
    snapshot = env.publisher.current("W", "S")
    assert snapshot is not None and snapshot.summary.item_count == 1


def test_no_refresh_when_the_summary_did_not_change(env: Env, shared_data: Path) -> None:
    env.publish()
    watcher = env.watch()
    first = put(shared_data, "size/byte.tif", env.folder)
    env.wait_added(first)
    env.wait_jobs(1, watcher)
    env.run_jobs()
    copy = put(shared_data, "size/byte.tif", env.folder, "same_place.tif")
    env.wait_added(copy)
    assert watcher.wait_idle()
    assert watcher.reports[-1].items_added == 1 and watcher.reports[-1].refreshed == []
    assert env.job_count() == 1


def test_start_up_catches_up_with_files_that_arrived_meanwhile(env: Env, shared_data: Path) -> None:
    first = env.watch()
    early = put(shared_data, "size/byte.tif", env.folder)
    env.wait_added(early)
    first.stop()
    late = [put(shared_data, MODIS.format(d), env.folder / "2013" / "sub") for d in MODIS_DATES[:2]]
    (env.folder / ".hidden.tif").write_bytes(b"not looked at")
    second = env.watch()
    env.wait_added(*late)
    assert second.wait_idle()
    done = [p for r in second.reports for p in (*r.files_added, *r.skipped)]
    assert sorted(done) == sorted(late)  # the settled file was not even looked at again
    assert env.journal.lookup("d", [str(env.folder / ".hidden.tif")]) == {}


def test_a_folder_moved_in_is_scanned(env: Env, shared_data: Path, tmp_path: Path) -> None:
    env.watch()
    outside = tmp_path / "data" / "staging"
    paths = [put(shared_data, MODIS.format(d), outside) for d in MODIS_DATES[:2]]
    os.replace(outside, env.folder / "batch1")
    env.wait_added(*(str(env.folder / "batch1" / Path(p).name) for p in paths))


def test_include_exclude_and_non_recursive(env: Env, shared_data: Path) -> None:
    watcher = env.watch(include=("*.tif",), exclude=("skip_*",), recursive=False)
    taken = put(shared_data, "size/byte.tif", env.folder, "take.tif")
    skipped = put(shared_data, "size/byte.tif", env.folder, "skip_me.tif")
    other = put(shared_data, MODIS.format(MODIS_DATES[0]), env.folder)
    nested = put(shared_data, "size/byte.tif", env.folder / "sub", "nested.tif")
    env.wait_added(taken)
    assert watcher.wait_idle()
    assert [env.state(p) for p in (skipped, other, nested)] == [None, None, None]
    assert watcher.notify([skipped, taken]) == [skipped]


def test_rules_are_checked_at_start(env: Env, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter):
        FolderWatcher([env.rule(folder=env.folder / "missing")], env.pipeline).start()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(PathNotAllowed):
        FolderWatcher([env.rule(folder=outside)], env.pipeline).start()
    env.pipeline.ingestor.create_dataset("other", "EPSG:4326")
    env.publisher.publish(ServiceDefinition(name="O", folder="W", dataset="other"))
    with pytest.raises(InvalidParameter) as info:
        FolderWatcher([env.rule(service="W/O")], env.pipeline).start()
    assert "publishes dataset 'other'" in str(info.value)
