"""The ingest pipeline over a PostgreSQL catalog: the SQLite pipeline tests on PostgreSQL,
and several watchers (nodes) taking the same files at once."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.catalog.postgres import PostgresCatalog, PostgresIngestJournal
from livemosaic.adapters.jobs.runner import JobRunner
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.adapters.raster.overviews import RasterioOverviewBuilder
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import RasterItem
from livemosaic.core.pipeline import BatchReport, IngestPipeline, InProcessRefresh
from livemosaic.core.ports import InspectOptions, ItemQuery
from livemosaic.core.publishing import Publisher
from livemosaic.core.refresh import Refresher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.watch_rules import WatchRule
from livemosaic.rest.refresh_wire import GP_JOBS
from tests.core.test_pipeline import *  # noqa: F403
from tests.core.test_pipeline import DATE_PATTERN, MODIS, MODIS_DATES, Env, drop
from tests.postgres import pg_database, pg_url

__all__ = ["pg_database", "pg_url"]

# reads the rules file only: no catalog involved
del test_rules_load_from_toml  # noqa: F821
del test_bad_rules_name_the_key  # noqa: F821


@dataclass
class PgEnv(Env):
    url: str = ""

    def job_count(self) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT count(*) FROM jobs").fetchone()
        return int(row[0]) if row else 0


class CountingSource(RasterioSource):
    """The raster reader, counting the files it inspects."""

    inspected: list[str] = []

    def inspect(self, path: str, options: InspectOptions) -> list[RasterItem]:
        self.inspected.append(path)
        return super().inspect(path, options)


def _pipeline(url: str, data: Path) -> tuple[IngestPipeline, PgEnv]:
    stores = open_stores(url)
    catalog = stores.catalog
    assert isinstance(catalog, PostgresCatalog)
    assert isinstance(stores.journal, PostgresIngestJournal)
    source = CountingSource([data])
    registry = ServiceRegistry()
    publisher = Publisher(catalog, registry, RasterioProjector())
    trigger = InProcessRefresh(stores.jobs, GP_JOBS)
    pipeline = IngestPipeline(
        catalog,
        source,
        stores.journal,
        Ingestor(catalog, source, [data]),
        trigger,
        registry,
        overviews=RasterioOverviewBuilder(source.confine),
        batch_lock=stores.journal.batch,
    )
    runner = JobRunner(stores.jobs, Refresher(catalog, publisher), GP_JOBS)
    env = PgEnv(
        data / "incoming",
        stores,
        catalog,  # type: ignore[arg-type]
        stores.journal,  # type: ignore[arg-type]
        trigger,
        publisher,
        pipeline,
        runner,
        data / "unused.db",
        url=url,
    )
    return pipeline, env


@pytest.fixture()
def env(tmp_path: Path, pg_url: str) -> Iterator[Env]:
    data = tmp_path / "data"
    (data / "incoming").mkdir(parents=True)
    _, e = _pipeline(pg_url, data)
    yield e
    e.stores.close()


def test_watchers_on_three_nodes_read_and_add_each_file_once(
    tmp_path: Path, pg_url: str, shared_data: Path
) -> None:
    data = tmp_path / "data"
    folder = data / "incoming"
    folder.mkdir(parents=True)
    nodes = [_pipeline(pg_url, data) for _ in range(3)]
    first = nodes[0][1]
    first.pipeline.ingestor.create_dataset("d", "EPSG:4326", time_pattern=DATE_PATTERN)
    paths = [drop(shared_data, MODIS.format(d), folder) for d in MODIS_DATES]
    rule = WatchRule(folder=folder, dataset="d", service="W/S")
    reports: list[BatchReport] = []
    go = threading.Barrier(len(nodes))

    def run(pipeline: IngestPipeline) -> None:
        go.wait(30)
        reports.append(pipeline.process(rule, paths, refresh=False))

    CountingSource.inspected.clear()
    threads = [threading.Thread(target=run, args=(p,)) for p, _ in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert len(reports) == len(nodes)
        added = [p for r in reports for p in r.files_added]
        assert sorted(added) == sorted(paths), "a file was added by two watchers, or by none"
        assert sorted(CountingSource.inspected) == sorted(paths), "a file was read twice"
        items = first.catalog.find_items("d", ItemQuery())
        assert sorted(i.path for i in items) == sorted(paths)
        assert first.catalog.summary("d").item_count == len(paths)
        entries = first.journal.entries("d")
        assert [e.state for e in entries] == ["added"] * len(paths)
        assert [h.operation for h in first.catalog.history("d")].count("add") == 1
    finally:
        for _, e in nodes:
            e.stores.close()


def hold_the_batch_lock(url: str, held: Any) -> None:
    """Take dataset d's batch lock, say so, then hang (until killed) inside the batch."""
    stores = open_stores(url)
    assert isinstance(stores.journal, PostgresIngestJournal)
    with stores.journal.batch("d"):
        held.set()
        time.sleep(120)


def test_a_watcher_that_dies_mid_batch_releases_the_lock(pg_url: str) -> None:
    stores = open_stores(pg_url)
    journal = stores.journal
    assert isinstance(journal, PostgresIngestJournal)
    ctx = mp.get_context("spawn")
    held = ctx.Event()
    proc = ctx.Process(target=hold_the_batch_lock, args=(pg_url, held))
    proc.start()
    try:
        assert held.wait(30), "the child never took the lock"
        waited = threading.Event()

        def take() -> None:
            with journal.batch("D"):  # dataset names ignore case
                waited.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert not waited.wait(0.5), "two batches of one dataset ran at once"
    finally:
        proc.kill()
        proc.join(timeout=30)
    try:
        assert waited.wait(30), "the lock of the killed watcher was never released"
        taker.join(30)
    finally:
        stores.close()
