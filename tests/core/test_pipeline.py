"""The ingest pipeline with the real catalog, journal, raster reader and job store."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.adapters.catalog.journal import SqliteIngestJournal
from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.jobs.runner import JobRunner
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.adapters.raster.overviews import RasterioOverviewBuilder
from livemosaic.adapters.watch import open_for_writing
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.pipeline import IngestPipeline, InProcessRefresh, summary_changes
from livemosaic.core.ports import InspectOptions, ItemQuery, JournalEntry, RemoveFilter
from livemosaic.core.publishing import Publisher
from livemosaic.core.refresh import Refresher, SummaryField
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.watch_rules import Retention, WatchRule, load_rules, parse_rules, rule_for
from livemosaic.errors import InvalidParameter, StoreError
from livemosaic.rest.refresh_wire import GP_JOBS

MODIS = "timeseries/modis_ndvi/TERRA_MODIS_012010_NDVI_{}.jp2"
MODIS_DATES = ("2013-09-14", "2013-10-16", "2013-11-17", "2013-12-19", "2014-01-17", "2014-02-18")
DATE_PATTERN = "%Y-%m-%d"


@dataclass
class Env:
    folder: Path  # the watched folder, inside the registered data folder
    stores: Stores
    catalog: SqliteCatalog
    journal: SqliteIngestJournal
    trigger: InProcessRefresh
    publisher: Publisher
    pipeline: IngestPipeline
    runner: JobRunner
    db: Path

    def job_count(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])

    def run_jobs(self) -> None:
        while self.runner.run_once():
            pass

    def rule(self, dataset: str = "d", **changes: object) -> WatchRule:
        base = WatchRule(folder=self.folder, dataset=dataset, service="W/S")
        return replace(base, **changes)  # type: ignore[arg-type]

    def publish(self, dataset: str = "d", live: bool = True) -> None:
        self.publisher.publish(
            ServiceDefinition(
                name="S",
                folder="W",
                dataset=dataset,
                properties={"hasLiveData": "true" if live else "false"},
            )
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
    trigger = InProcessRefresh(stores.jobs, GP_JOBS)
    journal = stores.journal
    assert isinstance(journal, SqliteIngestJournal)
    pipeline = IngestPipeline(
        catalog,
        source,
        journal,
        Ingestor(catalog, source, [data]),
        trigger,
        registry,
        overviews=RasterioOverviewBuilder(source.confine),
    )
    runner = JobRunner(stores.jobs, Refresher(catalog, publisher), GP_JOBS)
    yield Env(folder, stores, catalog, journal, trigger, publisher, pipeline, runner, db)
    stores.close()


def drop(shared: Path, rel: str, folder: Path, name: str | None = None) -> str:
    target = folder / (name or Path(rel).name)
    shutil.copyfile(shared / rel, target)
    return str(target)


def history_ops(env: Env, dataset: str = "d") -> list[str]:
    return [h.operation for h in env.catalog.history(dataset)]


def test_a_batch_is_one_transaction_and_one_refresh(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326", time_pattern=DATE_PATTERN)
    env.publish()
    files = [
        drop(shared_data, "imagery/cogeo.tif", env.folder),
        drop(shared_data, "timeseries/bcsd_obs_1999.nc", env.folder),
        *(drop(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES[:3]),
    ]
    report = env.pipeline.process(env.rule(), files)
    assert sorted(report.files_added) == sorted(files)
    assert report.items_added == 1 + 24 + 3
    assert report.quarantined == [] and report.deferred == []
    assert history_ops(env).count("add") == 1  # one catalog transaction for the batch
    assert report.refreshed == ["W/S"]
    assert SummaryField.TIME_EXTENT in report.changed["W/S"]
    assert env.job_count() == 1
    assert {e.state for e in env.journal.lookup("d", files).values()} == {"added"}
    counts = {p: e.item_count for p, e in env.journal.lookup("d", files).items()}
    assert counts[files[1]] == 24 and counts[files[0]] == 1

    env.run_jobs()  # the job runner refreshes the service: the snapshot now matches
    snapshot = env.publisher.current("W", "S")
    assert snapshot is not None and snapshot.summary.item_count == 28
    assert summary_changes(snapshot, env.catalog.summary("d")) == []

    again = env.pipeline.process(env.rule(), files)
    assert sorted(again.skipped) == sorted(files)
    assert again.items_added == 0 and again.refreshed == []
    assert env.job_count() == 1


def test_new_items_inside_the_published_summary_need_no_refresh(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    first = drop(shared_data, "size/byte.tif", env.folder)
    env.pipeline.process(env.rule(), [first])
    env.publish()  # published after the first file: extent and cell size as they are now
    jobs = env.job_count()
    copy = drop(shared_data, "size/byte.tif", env.folder, "byte_copy.tif")
    report = env.pipeline.process(env.rule(), [copy])
    assert report.items_added == 1
    assert report.changed == {} and report.refreshed == []
    assert env.job_count() == jobs


def test_bad_files_are_quarantined_and_a_fixed_file_is_taken(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    good = drop(shared_data, "size/byte.tif", env.folder)
    truncated = drop(shared_data, "bad/truncated.tif", env.folder, "scene.tif")
    text = drop(shared_data, "bad/not_a_raster.tif", env.folder)
    report = env.pipeline.process(env.rule(), [truncated, good, text])
    assert report.files_added == [good]
    reasons = dict(report.quarantined)
    assert set(reasons) == {truncated, text}
    assert "truncated" in reasons[truncated] and "not a raster" in reasons[text]
    quarantine = env.folder / ".quarantine"
    assert sorted(os.listdir(quarantine)) == ["not_a_raster.tif", "scene.tif"]
    assert not os.path.exists(truncated)
    listed = env.journal.entries("d", "quarantined")
    assert {e.path for e in listed} == {truncated, text}
    assert all(e.moved_to and os.path.exists(e.moved_to) and e.reason for e in listed)
    assert env.catalog.summary("d").item_count == 1

    fixed = drop(shared_data, "imagery/cogeo.tif", env.folder, "scene.tif")
    assert fixed == truncated
    again = env.pipeline.process(env.rule(), [fixed])
    assert again.files_added == [fixed] and again.quarantined == []
    assert env.journal.lookup("d", [fixed])[fixed].state == "added"
    assert env.catalog.summary("d").item_count == 2


def test_record_mode_leaves_bad_files_and_skips_the_same_version(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    rule = env.rule(quarantine="record")
    bad = drop(shared_data, "bad/corrupt.tif", env.folder, "x.tif")
    first = env.pipeline.process(rule, [bad])
    assert [p for p, _ in first.quarantined] == [bad]
    assert os.path.exists(bad)
    second = env.pipeline.process(rule, [bad])
    assert second.quarantined == [] and second.skipped == [bad]  # not read again
    os.utime(bad, ns=(1, 1))  # a new version of the file (still bad): read again
    assert [p for p, _ in env.pipeline.process(rule, [bad]).quarantined] == [bad]
    shutil.copyfile(shared_data / "imagery/cogeo.tif", bad)
    assert env.pipeline.process(rule, [bad]).files_added == [bad]


def test_a_replaced_file_that_turns_bad_loses_its_items(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    rule = env.rule(quarantine="record")
    path = drop(shared_data, "size/byte.tif", env.folder)
    env.pipeline.process(rule, [path])
    shutil.copyfile(shared_data / "bad/truncated_header.tif", path)
    report = env.pipeline.process(rule, [path])
    assert [p for p, _ in report.quarantined] == [path]
    assert report.removed == 1
    assert env.catalog.summary("d").item_count == 0


def test_items_and_journal_rows_commit_together(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    path = drop(shared_data, "timeseries/bcsd_obs_1999.nc", env.folder)
    items = env.pipeline.source.inspect(path, InspectOptions(dataset_crs="EPSG:4326"))
    st = os.stat(path)
    broken = JournalEntry("d", path, st.st_size, st.st_mtime_ns, "bogus")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        env.journal.commit("d", items, [broken])  # the CHECK constraint fails inside the commit
    assert env.catalog.summary("d").item_count == 0  # so no item was written either
    assert env.journal.lookup("d", [path]) == {}
    good = replace(broken, state="added", item_count=len(items))
    result = env.journal.commit("d", items, [good])
    assert len(result.added) == 24
    assert env.journal.lookup("d", [path])[path].state == "added"
    assert env.journal.commit("d", items, [good]).skipped_paths == (path,)
    assert env.catalog.summary("d").item_count == 24


def test_an_interrupted_batch_is_finished_by_the_next_run(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    path = drop(shared_data, "size/byte.tif", env.folder)
    st = os.stat(path)
    env.journal.record([JournalEntry("d", path, st.st_size, st.st_mtime_ns, "pending")])
    rule = env.rule()
    assert env.pipeline.pending_paths(rule) == [path]
    assert env.pipeline.process(rule, env.pipeline.pending_paths(rule)).files_added == [path]
    assert env.pipeline.pending_paths(rule) == []
    gone = str(env.folder / "gone.tif")
    env.journal.record([JournalEntry("d", gone, 1, 1, "pending")])
    assert env.pipeline.pending_paths(rule) == []  # a vanished pending file is forgotten
    assert env.journal.lookup("d", [gone]) == {}


def test_files_added_by_other_means_are_journaled_not_read_again(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    path = drop(shared_data, "size/byte.tif", env.folder)
    env.pipeline.ingestor.add_paths("d", [path])
    report = env.pipeline.process(env.rule(), [path])
    assert report.skipped == [path] and report.items_added == 0
    assert env.journal.lookup("d", [path])[path].state == "added"


def test_explicit_adds_bring_back_removed_items(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    path = drop(shared_data, "size/byte.tif", env.folder)
    env.pipeline.process(env.rule(), [path])
    env.catalog.remove_items("d", RemoveFilter(path=path))
    assert env.pipeline.process(env.rule(), [path]).items_added == 0  # the watcher: settled
    assert env.pipeline.process(env.rule(), [path], explicit=True).items_added == 1


def test_paths_outside_the_data_folders_are_rejected(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    report = env.pipeline.process(env.rule(), [shared_data / "size/byte.tif"])
    assert report.rejected and "registered data folder" in report.rejected[0][1]
    assert env.journal.entries("d") == []


def test_retention_by_acquisition_time_removes_items_and_refreshes(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326", time_pattern=DATE_PATTERN)
    env.publish()
    rule = env.rule(retention=Retention(keep_days=40))
    first = [drop(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES[:3]]
    report = env.pipeline.process(rule, first)  # Sep 14 .. Nov 17: 64 days apart
    assert report.items_added == 3 and report.removed == 1  # Sep 14 is older than 40 days
    env.run_jobs()
    later = drop(shared_data, MODIS.format(MODIS_DATES[4]), env.folder)  # 2014-01-17
    report = env.pipeline.process(rule, [later])
    assert report.removed == 2 and report.refreshed == ["W/S"]
    assert env.job_count() == 2
    env.run_jobs()
    snapshot = env.publisher.current("W", "S")
    assert snapshot is not None and snapshot.summary.item_count == 1
    # the removed files are not added back: the journal remembers them
    assert env.pipeline.process(rule, first).items_added == 0


def test_retention_keep_last_and_max_age(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326", time_pattern=DATE_PATTERN)
    files = [drop(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES]
    env.pipeline.process(env.rule(retention=Retention(keep_last=4)), files)
    kept = env.catalog.find_items("d", ItemQuery(order_by=(("StdTime", True),)))
    assert [Path(i.path).name[-14:-4] for i in kept] == list(MODIS_DATES[2:])
    days = 86_400_000
    env.pipeline.clock = lambda: kept[0].date_added + 3 * days  # type: ignore[operator]
    removed = env.pipeline.maintain(env.rule(retention=Retention(max_age_days=2))).removed
    assert removed == 4 and env.catalog.summary("d").item_count == 0


def test_a_service_without_live_data_is_not_refreshed(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    env.publish(live=False)
    report = env.pipeline.process(env.rule(), [drop(shared_data, "size/byte.tif", env.folder)])
    assert report.changed and report.refreshed == []
    assert any("hasLiveData=false" in n for n in report.notes)
    assert env.job_count() == 0


def test_a_waiting_refresh_job_is_not_submitted_twice(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326", time_pattern=DATE_PATTERN)
    env.publish()
    for date in MODIS_DATES[:2]:
        env.pipeline.process(env.rule(), [drop(shared_data, MODIS.format(date), env.folder)])
    assert env.job_count() == 1  # the first job still waits and will see both files
    env.run_jobs()
    env.pipeline.process(env.rule(), [drop(shared_data, MODIS.format(MODIS_DATES[2]), env.folder)])
    assert env.job_count() == 2


def test_maintain_requests_a_refresh_a_crash_left_out(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    env.publish()
    env.pipeline.process(
        env.rule(), [drop(shared_data, "size/byte.tif", env.folder)], refresh=False
    )
    assert env.job_count() == 0
    assert env.pipeline.maintain(env.rule()).refreshed == ["W/S"]
    assert env.job_count() == 1


def test_overviews_are_built_for_plain_geotiffs_only(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    plain = drop(shared_data, "mosaic/rgb1.tif", env.folder)
    cog = drop(shared_data, "imagery/cogeo.tif", env.folder)
    mtime = os.stat(plain).st_mtime_ns
    report = env.pipeline.process(env.rule(build_overviews=True), [plain, cog])
    assert report.overviews == [plain]
    assert os.path.exists(plain + ".ovr") and not os.path.exists(cog + ".ovr")
    assert os.stat(plain).st_mtime_ns == mtime  # the raster itself is untouched
    item = env.catalog.find_items("d", ItemQuery(order_by=(("OBJECTID", True),)))[0]
    assert item.path == plain and item.overview_count >= 1


def test_a_dataset_is_created_with_the_first_file(env: Env, shared_data: Path) -> None:
    rule = env.rule("fresh", service=None, time_pattern=DATE_PATTERN)
    path = drop(shared_data, MODIS.format(MODIS_DATES[0]), env.folder)
    report = env.pipeline.process(rule, [path])
    assert report.items_added == 1
    ds = env.catalog.get_dataset("fresh")
    assert ds.crs and ds.time_pattern == DATE_PATTERN
    assert env.catalog.summary("fresh").time_extent is not None


def test_rules_load_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        """
[defaults]
settle_seconds = 0.5
retention = { keep_days = 30 }

[[watch]]
folder = "incoming/s2"
dataset = "sentinel2"
service = "Imagery/Sentinel2"
include = ["*.tif"]
marker = true
retention = { keep_last = 100 }

[[watch]]
folder = "/data/nc"
dataset = "ocean"
quarantine = "record"
build_overviews = true
"""
    )
    first, second = load_rules(config)
    assert first.folder == tmp_path / "incoming" / "s2"
    assert first.service_name == ("Imagery", "Sentinel2")
    assert first.settle_seconds == 0.5 and first.marker_mode and first.include == ("*.tif",)
    assert first.retention == Retention(keep_days=30, keep_last=100)
    assert first.effective_quarantine_dir == first.folder / ".quarantine"
    assert second.quarantine == "record" and second.build_overviews and second.service is None
    assert second.retention == Retention(keep_days=30)
    nested = replace(first, folder=first.folder / "deep", dataset="deep")
    rules = [first, second, nested]
    assert rule_for(rules, first.folder / "deep" / "x.tif") is nested
    assert rule_for(rules, first.folder / "deep" / "x.tif", "sentinel2") is first
    assert rule_for(rules, "/data/nc/a/b.nc") is second
    assert rule_for(rules, "/data/ncx/b.nc") is None


@pytest.mark.parametrize(
    ("document", "parameter"),
    [
        ({"watch": [{"folder": "/x", "dataset": "d", "setle_seconds": 1}]}, "watch"),
        ({"watch": [{"folder": "/x"}]}, "dataset"),
        ({"watch": [{"folder": "/x", "dataset": "d", "quarantine": "delete"}]}, "quarantine"),
        ({"watch": [{"folder": "/x", "dataset": "d", "settle_seconds": "2"}]}, "settle_seconds"),
        (
            {"watch": [{"folder": "/x", "dataset": "d", "retention": {"keep_last": 0}}]},
            "retention.keep_last",
        ),
        ({"watch": [{"folder": "/x", "dataset": "d", "service": "a/b/c"}]}, "service"),
        ({"watches": []}, "config"),
        ({"watch": [{"folder": "/x", "dataset": "d"}, {"folder": "/x", "dataset": "D"}]}, "watch"),
    ],
)
def test_bad_rules_name_the_key(document: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_rules(document)
    assert info.value.parameter == parameter


def test_routine_updates_leave_no_history_when_it_is_switched_off(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("quiet", "EPSG:4326", history=False)
    rule = env.rule("quiet", service=None, retention=Retention(keep_last=1))
    files = [drop(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES[:2]]
    report = env.pipeline.process(rule, files)
    assert report.items_added == 2 and report.removed == 1
    assert env.catalog.history("quiet") == []


def test_an_explicit_add_reads_a_recorded_bad_file_again(env: Env, shared_data: Path) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    rule = env.rule(quarantine="record")
    bad = drop(shared_data, "bad/no_georef.tif", env.folder)
    assert [p for p, _ in env.pipeline.process(rule, [bad]).quarantined] == [bad]
    assert env.pipeline.process(rule, [bad]).skipped == [bad]
    again = env.pipeline.process(rule, [bad], explicit=True)
    assert [p for p, _ in again.quarantined] == [bad]


def test_a_bad_file_still_open_for_writing_is_deferred_not_quarantined(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    env.pipeline.writers = open_for_writing
    content = (shared_data / "imagery/RGB.byte.tif").read_bytes()
    path = str(env.folder / "slow.tif")
    with open(path, "wb") as fh:  # a producer that paused half-way, the file still open
        fh.write(content[: len(content) // 2])
        fh.flush()
        report = env.pipeline.process(env.rule(), [path])
        assert report.deferred == [path] and report.quarantined == []
        assert env.journal.lookup("d", [path])[path].state == "pending"
        fh.write(content[len(content) // 2 :])
    assert env.pipeline.process(env.rule(), [path]).files_added == [path]
    assert not (env.folder / ".quarantine").exists()


def test_a_bad_file_written_to_before_its_move_stays_where_it_arrived(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    path = drop(shared_data, "bad/truncated.tif", env.folder, "scene.tif")

    def writer_comes_back(name: str) -> bool:  # between the check and the move
        with open(name, "ab") as fh:
            fh.write(b"\0" * 16)
        return False

    env.pipeline.writers = writer_comes_back
    report = env.pipeline.process(env.rule(), [path])
    assert report.deferred == [path] and report.quarantined == [] and report.moved == {}
    assert os.path.exists(path) and not any((env.folder / ".quarantine").glob("*"))
    assert env.journal.lookup("d", [path])[path].state == "pending"
    env.pipeline.writers = None  # stable now, and still bad: quarantined
    again = env.pipeline.process(env.rule(), [path])
    assert [p for p, _ in again.quarantined] == [path] and list(again.moved) == [path]
    assert not os.path.exists(path)


def test_a_quarantined_file_never_displaces_a_file_delivered_again(
    env: Env, shared_data: Path
) -> None:
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    rule = env.rule()
    path = drop(shared_data, "bad/truncated.tif", env.folder, "scene.tif")
    report = env.pipeline.process(rule, [path])
    moved, _ = report.moved[path]
    drop(shared_data, "size/byte.tif", env.folder, "scene.tif")  # delivered again
    assert env.pipeline.move_back(rule, path, moved) is False
    assert os.path.getsize(path) == (shared_data / "size/byte.tif").stat().st_size
    assert os.path.exists(moved)
    os.remove(path)
    assert env.pipeline.move_back(rule, path, moved) is True
    assert not os.path.exists(moved) and os.path.exists(path)
    assert env.journal.lookup("d", [path])[path].state == "pending"


def test_a_quarantine_on_another_filesystem_keeps_the_file_in_place(
    env: Env, shared_data: Path
) -> None:
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == env.folder.stat().st_dev:
        pytest.skip("no second filesystem to put the quarantine folder on")
    env.pipeline.ingestor.create_dataset("d", "EPSG:4326")
    qdir = other / f"livemosaic-quarantine-{os.getpid()}-{id(env)}"
    try:
        path = drop(shared_data, "bad/truncated.tif", env.folder, "scene.tif")
        report = env.pipeline.process(env.rule(quarantine_dir=qdir), [path])
        assert [p for p, _ in report.quarantined] == [path] and report.moved == {}
        (entry,) = env.journal.entries("d", "quarantined")
        assert entry.moved_to is None and "another filesystem" in entry.reason
        assert os.path.exists(path) and not any(qdir.glob("**/*.tif"))
    finally:
        shutil.rmtree(qdir, ignore_errors=True)
