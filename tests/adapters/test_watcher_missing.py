"""Files that go away: a watch rule with ``remove_missing`` removes their items and refreshes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from livemosaic.core.missing import missing_files
from livemosaic.core.ports import ItemQuery
from livemosaic.core.watch_rules import rule_from_mapping
from livemosaic.errors import InvalidParameter
from tests.adapters.watching import MODIS, MODIS_DATES, Env, put, wait_until, watch_env


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[Env]:
    with watch_env(tmp_path) as e:
        yield e


def _paths(env: Env) -> set[str]:
    return {it.path for it in env.catalog.find_items("d", ItemQuery())}


def test_deleted_file_loses_its_items_and_the_service_is_refreshed(
    env: Env, shared_data: Path
) -> None:
    env.publish()
    watcher = env.watch(remove_missing=True)
    files = [put(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES[:3]]
    env.wait_added(*files)
    env.wait_jobs(1, watcher)
    env.run_jobs()
    os.unlink(files[2])  # the newest: the time extent shrinks
    wait_until(lambda: files[2] not in _paths(env), what="items of the deleted file removed")
    env.wait_jobs(2, watcher)
    report = watcher.reports[-1]
    assert report.missing == [files[2]] and report.removed == 1
    assert report.refreshed == ["W/S"]
    assert env.state(files[2]) is None  # forgotten by the journal: it may come back
    env.run_jobs()
    snapshot = env.publisher.current("W", "S")
    assert snapshot is not None and snapshot.summary.item_count == 2
    # it comes back: added again
    again = put(shared_data, MODIS.format(MODIS_DATES[2]), env.folder)
    env.wait_added(again)


def test_renamed_away_and_deleted_while_down_are_found(env: Env, shared_data: Path) -> None:
    first = env.watch(remove_missing=True)
    files = [put(shared_data, MODIS.format(d), env.folder / "sub") for d in MODIS_DATES[:3]]
    env.wait_added(*files)
    os.replace(files[0], env.folder / "sub" / "renamed.jp2.tmp")  # a name never taken
    wait_until(lambda: files[0] not in _paths(env), what="items of the renamed file removed")
    first.stop()
    os.unlink(files[1])  # while nobody watches: the start-up scan notices
    env.watch(remove_missing=True)
    wait_until(lambda: files[1] not in _paths(env), what="items removed at start-up")
    assert _paths(env) == {files[2]}


def test_without_the_option_items_stay_and_are_listed_as_missing(
    env: Env, shared_data: Path
) -> None:
    watcher = env.watch()
    files = [put(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES[:2]]
    env.wait_added(*files)
    os.unlink(files[0])
    watcher.rescan_now()
    assert watcher.wait_idle()
    assert _paths(env) == set(files)  # before this option existed, too
    report = missing_files(env.catalog, "d")
    assert [f.path for f in report.files] == [files[0]]
    assert len(report.files[0].item_ids) == 1 and report.items_checked == 2


def test_a_vanished_folder_removes_nothing(env: Env, shared_data: Path) -> None:
    rule = env.rule(remove_missing=True)
    files = [put(shared_data, MODIS.format(d), env.folder) for d in MODIS_DATES[:2]]
    env.pipeline.process(rule, files)
    for path in files:
        os.unlink(path)
    os.rmdir(env.folder)  # an unmounted share looks like this
    report = env.pipeline.remove_missing(rule, files)
    assert report.removed == 0 and "missing" in report.notes[0]
    assert _paths(env) == set(files)


def test_rule_option_from_config_and_type_checked(tmp_path: Path) -> None:
    base = {"folder": str(tmp_path), "dataset": "d"}
    assert rule_from_mapping({**base, "remove_missing": True}).remove_missing is True
    assert rule_from_mapping(base).remove_missing is False
    with pytest.raises(InvalidParameter, match="remove_missing"):
        rule_from_mapping({**base, "remove_missing": "yes"})
