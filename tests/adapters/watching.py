"""Helpers of the folder-watcher tests: a real catalog, journal, job store and pipeline."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.adapters.catalog.journal import SqliteIngestJournal
from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.jobs.runner import JobRunner
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.adapters.watch import FolderWatcher, open_for_writing
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.pipeline import IngestPipeline, InProcessRefresh
from livemosaic.core.publishing import Publisher
from livemosaic.core.quarantine import WriterCheck
from livemosaic.core.refresh import Refresher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.watch_rules import WatchRule
from livemosaic.rest.refresh_wire import GP_JOBS

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


@contextmanager
def watch_env(tmp_path: Path, writers: WriterCheck | None = open_for_writing) -> Iterator[Env]:
    """A watched folder inside a registered data folder, dataset ``d`` (EPSG:4326).

    ``writers=None`` stands for a writer the open-file check cannot see (another machine).
    """
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
    journal = stores.journal
    assert isinstance(journal, SqliteIngestJournal)
    ingestor = Ingestor(catalog, source, [data])
    pipeline = IngestPipeline(
        catalog,
        source,
        journal,
        ingestor,
        InProcessRefresh(stores.jobs, GP_JOBS),
        registry,
        writers=writers,
    )
    runner = JobRunner(stores.jobs, Refresher(catalog, publisher), GP_JOBS)
    ingestor.create_dataset("d", "EPSG:4326", time_pattern="%Y-%m-%d")
    e = Env(folder, stores, catalog, journal, publisher, pipeline, runner, db)
    try:
        yield e
    finally:
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
