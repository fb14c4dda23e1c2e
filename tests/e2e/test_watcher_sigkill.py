"""Exactly-once ingest: SIGKILL the watcher at random points while files arrive, restart it.

A real ``watch`` process (``python -m livemosaic.cli.watch``) runs against a real SQLite
catalog. Files keep arriving (atomic renames and plain copies, one-item and 12/24-slice
files, one bad file); the process is killed with SIGKILL 0–300 ms after it reports that it is
watching, at least 20 times, and restarted each time. At the end every file is in the catalog
exactly once with exactly the items ``inspect`` gives for it, the journal says so, and the
bad file is quarantined with no item (recorded in place, or moved to the quarantine folder).
The files lost and duplicated are counted from the catalog and the journal and recorded as
the ``kill9`` figure.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import RasterItem, ServiceDefinition
from livemosaic.core.ports import InspectOptions
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from tests.adapters.items import make_item
from tests.figures import record

KILLS = 22
MODIS = "timeseries/modis_ndvi/TERRA_MODIS_012010_NDVI_{}.jp2"
MODIS_DATES = ("2013-09-14", "2013-10-16", "2013-11-17", "2013-12-19", "2014-01-17", "2014-02-18")
BAD = "bad_0.tif"


def sources() -> list[tuple[str, str]]:
    """(sample, name in the watched folder) for every file that will arrive, in order."""
    files = [(MODIS.format(d), Path(MODIS.format(d)).name) for d in MODIS_DATES]
    files += [("timeseries/bcsd_obs_1999.nc", f"bcsd_{i}.nc") for i in range(4)]
    files += [("multidim/test_lcc.nc", f"lcc_{i}.nc") for i in range(3)]
    files += [("size/byte.tif", f"byte_{i:02d}.tif") for i in range(40)]
    files.append(("bad/not_a_raster.tif", BAD))
    random.Random(7).shuffle(files)
    return files


def arrive(shared: Path, rel: str, folder: Path, name: str, atomic: bool) -> Path:
    target = folder / name
    if atomic:
        part = folder / f"{name}.part"
        shutil.copyfile(shared / rel, part)
        os.replace(part, target)
    else:
        shutil.copyfile(shared / rel, target)
    return target


def start(env: dict[str, str], config: Path, log: Path, *extra: str) -> subprocess.Popen[str]:
    with log.open("a") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "livemosaic.cli.watch",
                "watch",
                "--config",
                str(config),
                *extra,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def journal_state(db: Path) -> tuple[int, int, int]:
    """(rows, last change, pending rows) of the ingest journal."""
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(max(updated), 0), "
            "coalesce(sum(state = 'pending'), 0) FROM ingest_journal"
        ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def count_items(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])


def wait_for_work(db: Path, before: tuple[int, int, int], timeout: float = 5.0) -> None:
    """Return once the watcher wrote to the journal (a batch began), or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while journal_state(db)[:2] == before[:2] and time.monotonic() < deadline:
        time.sleep(0.005)


def losses(
    expected: dict[str, list[RasterItem]],
    found: dict[str, list[tuple[str, str]]],
    journal: dict[str, str],
    bad: str,
) -> tuple[list[str], list[str]]:
    """The files whose items are missing from the catalog or the journal (lost), and those
    with an item more than once or more items than the file holds (duplicated); the bad file
    is lost when it is not quarantined, duplicated when it has items."""
    lost: list[str] = []
    duplicated: list[str] = []
    for path, items in expected.items():
        got = found.get(path, [])
        uris = [u for u, _ in got]
        if path == bad:
            if journal.get(path) != "quarantined":
                lost.append(path)
            if got:
                duplicated.append(path)
            continue
        if Counter(i.uri for i in items) - Counter(uris) or journal.get(path) != "added":
            lost.append(path)  # an item the file holds is missing
        if len(set(got)) < len(got) or len(got) > len(items):
            duplicated.append(path)  # an item twice, or more items than the file holds
    duplicated += [p for p in found if p not in expected]  # items of files never delivered
    return lost, duplicated


@pytest.mark.slow
@pytest.mark.parametrize("quarantine", ["record", "move"])
def test_sigkill_at_random_points_never_loses_or_duplicates_items(
    tmp_path: Path, shared_data: Path, quarantine: str
) -> None:
    root = tmp_path / "data"
    folder = root / "incoming"
    folder.mkdir(parents=True)
    db = tmp_path / "state" / "catalog.db"
    stores = open_stores(f"sqlite:///{db}")
    ingestor = Ingestor(stores.catalog, RasterioSource([root]), [root])
    ingestor.create_dataset("live", "EPSG:4326", time_pattern="%Y-%m-%d")
    Publisher(stores.catalog, ServiceRegistry(), RasterioProjector()).publish(
        ServiceDefinition(
            name="Feed", folder="Live", dataset="live", properties={"hasLiveData": "true"}
        )
    )
    stores.close()
    config = tmp_path / "rules.toml"
    config.write_text(
        f"""
[[watch]]
folder = "{folder}"
dataset = "live"
service = "Live/Feed"
settle_seconds = 0.05
batch_window_seconds = 0.02
max_batch_files = 2
quarantine = "{quarantine}"
"""
    )
    env = dict(os.environ)
    env.update(
        LIVEMOSAIC_DATA_DIR=str(tmp_path / "state"),
        LIVEMOSAIC_CATALOG_URL=f"sqlite:///{db}",
        LIVEMOSAIC_DATA_FOLDERS=str(root),
    )
    log = tmp_path / "watch.log"
    rng = random.Random()
    todo = sources()
    arrived: list[Path] = []
    interrupted = 0

    progressed = 0  # kills after which more items were committed than before the run
    for cycle in range(KILLS):
        for _ in range(2):  # files that arrive while the watcher is down
            if todo:
                rel, name = todo.pop()
                arrived.append(arrive(shared_data, rel, folder, name, rng.random() < 0.5))
        before, items_before = journal_state(db), count_items(db)
        proc = start(env, config, log)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Watching"), f"cycle {cycle}: {line!r}\n{log.read_text()[-3000:]}"
        if cycle % 2:  # every other kill counts from the start of a batch, not of the process
            wait_for_work(db, before)
        delay = rng.uniform(0.0, 0.3)
        first = rng.uniform(0.0, delay)
        time.sleep(first)
        if todo:  # one more arrives while it runs
            rel, name = todo.pop()
            arrived.append(arrive(shared_data, rel, folder, name, rng.random() < 0.5))
        time.sleep(delay - first)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        proc.stdout.close()
        interrupted += journal_state(db)[2] > 0
        progressed += count_items(db) > items_before
    for rel, name in todo:  # the rest arrive before the last, undisturbed run
        arrived.append(arrive(shared_data, rel, folder, name, True))

    final = start(env, config, log, "--once")
    out, _ = final.communicate(timeout=120)
    assert final.returncode == 0, out + log.read_text()[-3000:]
    stats = f"{KILLS} kills: {interrupted} left a batch half done, {progressed} followed commits"
    print(stats)
    assert interrupted and progressed, f"the kills never hit a batch in progress: {stats}"

    source = RasterioSource([root])
    options = InspectOptions(dataset_crs="EPSG:4326", time_pattern="%Y-%m-%d")
    with sqlite3.connect(db) as conn:
        ds = conn.execute("SELECT id FROM datasets WHERE name = 'live'").fetchone()[0]
        rows = conn.execute(
            "SELECT path, uri, bands FROM items WHERE dataset_id = ? ORDER BY id", (ds,)
        ).fetchall()
        journal = dict(
            conn.execute("SELECT path, state FROM ingest_journal WHERE dataset_id = ?", (ds,))
        )
        item_count = conn.execute(
            "SELECT item_count FROM summary WHERE dataset_id = ?", (ds,)
        ).fetchone()[0]
    by_path: dict[str, list[tuple[str, str]]] = {}
    for path, uri, bands in rows:
        by_path.setdefault(path, []).append((uri, bands))

    assert len(arrived) == len(sources())
    bad = str(folder / BAD)
    expected_items = {
        str(p): [] if str(p) == bad else source.inspect(str(p), options) for p in arrived
    }
    lost, duplicated = losses(expected_items, by_path, journal, bad)
    record(
        "kill9",
        rounds=KILLS,
        files=len(arrived),
        items=len(rows),
        lost=len(lost),
        duplicated=len(duplicated),
        quarantine=quarantine,
        mid_batch=interrupted,  # kills that left a batch half done
        after_commit=progressed,  # kills that came after items were committed
    )
    assert lost == [] and duplicated == [], f"lost: {lost}; duplicated: {duplicated}"
    assert journal.pop(bad) == "quarantined" and bad not in by_path
    if quarantine == "move":
        assert not os.path.exists(bad) and (folder / ".quarantine" / BAD).is_file()
    expected_total = 0
    for path in arrived:
        if str(path) == bad:
            continue
        expected = expected_items[str(path)]
        got = by_path.pop(str(path), [])
        assert len(got) == len(expected), f"{path.name}: {len(got)} items, not {len(expected)}"
        assert len(set(got)) == len(got), f"{path.name} has duplicate items"
        assert sorted(u for u, _ in got) == sorted(i.uri for i in expected)
        assert journal.pop(str(path)) == "added"
        expected_total += len(expected)
    assert by_path == {}, f"items of files that never arrived: {list(by_path)}"
    assert journal == {}, f"unexpected journal rows: {journal}"
    assert len(rows) == expected_total == item_count


def test_losses_counts_missing_and_repeated_items() -> None:
    """The count behind the kill9 figure can say something else than 0."""
    a, b = make_item(1, path="/in/a.nc"), make_item(2, path="/in/b.tif")
    two = [a, replace(a, bands=(2,))]  # one file, two slices of one subdataset
    expected = {"/in/a.nc": two, "/in/b.tif": [b], "/in/bad.tif": []}
    ok = {"/in/a.nc": [(a.uri, "1"), (a.uri, "2")], "/in/b.tif": [(b.uri, "1")]}
    journal = {"/in/a.nc": "added", "/in/b.tif": "added", "/in/bad.tif": "quarantined"}
    assert losses(expected, ok, journal, "/in/bad.tif") == ([], [])
    one_slice_lost = {**ok, "/in/a.nc": [(a.uri, "1")]}
    assert losses(expected, one_slice_lost, journal, "/in/bad.tif") == (["/in/a.nc"], [])
    assert losses(expected, {**ok, "/in/a.nc": [(a.uri, "1")] * 2}, journal, "/in/bad.tif")[1] == [
        "/in/a.nc"
    ]
    assert losses(expected, {"/in/b.tif": ok["/in/b.tif"]}, journal, "/in/bad.tif")[0] == [
        "/in/a.nc"
    ]
    unjournaled = {**journal, "/in/b.tif": "pending"}
    assert losses(expected, ok, unjournaled, "/in/bad.tif")[0] == ["/in/b.tif"]
    extra = {**ok, "/in/ghost.tif": [("x", "1")], "/in/bad.tif": [("y", "1")]}
    assert losses(expected, extra, journal, "/in/bad.tif")[1] == ["/in/bad.tif", "/in/ghost.tif"]
