"""Time as a dimension of the SQLite catalog's R*Tree (migration 0004) against real files."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from livemosaic.adapters.catalog.connection import migrations, split_statements
from livemosaic.adapters.catalog.rows import INSERT_ITEM, UNTIMED_RANGE, item_row
from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.catalog.sqlwhere import where_time_bounds
from livemosaic.core.fields import item_attributes
from livemosaic.core.models import Extent, MosaicDataset, RasterItem
from livemosaic.core.ports import ItemQuery, RemoveFilter
from livemosaic.core.where import evaluate, parse_where

from .items import DAY, make_item

DS = "Live"
T0 = 1_726_099_200_000  # 2024-09-12, epoch ms: float32 keeps ~1e5 ms of it
HOUR = 3_600_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteCatalog]:
    s = SqliteCatalog(tmp_path / "catalog.db")
    s.create_dataset(MosaicDataset(DS, "EPSG:3857"))
    yield s
    s.close()


def names(items: Sequence[RasterItem]) -> set[str]:
    return {it.name for it in items}


def rtree_rows(store: SqliteCatalog) -> dict[int, tuple[float, float]]:
    """id -> (t_min, t_max) as the R*Tree stores them (float32)."""
    conn = sqlite3.connect(store.path)
    try:
        return {
            r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, t_min, t_max FROM items_rtree")
        }
    finally:
        conn.close()


def item_times(store: SqliteCatalog) -> dict[int, tuple[int | None, int | None]]:
    conn = sqlite3.connect(store.path)
    try:
        return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, time, time_end FROM items")}
    finally:
        conn.close()


def assert_rtree_matches_items(store: SqliteCatalog) -> None:
    """One R*Tree row per item, its interval holding [time, time_end] (whole range untimed)."""
    boxes, times = rtree_rows(store), item_times(store)
    assert set(boxes) == set(times)
    for oid, (t, end) in times.items():
        t_min, t_max = boxes[oid]
        if t is None:
            assert t_min <= -3.3e38 and t_max >= 3.3e38, (oid, t_min, t_max)
        else:
            assert end is not None
            assert t_min <= t <= end <= t_max, (oid, t, end, t_min, t_max)


# -- precision at the boundaries ------------------------------------------------------------


def test_float32_bounds_are_widened_outwards(store: SqliteCatalog) -> None:
    rng = random.Random(5)
    items = []
    for i in range(200):
        t = T0 + rng.randrange(-(10**10), 10**10)
        end = t + rng.choice([0, 1, 999, HOUR]) if i % 2 else None
        items.append(make_item(i, time=t, end_time=end))
    store.add_items(DS, items)
    assert_rtree_matches_items(store)
    stored, times = rtree_rows(store), item_times(store)
    # the stored bounds really are coarse (so the exact checks are needed), yet outward
    assert any(stored[oid][0] != t for oid, (t, _) in times.items())
    assert float(np.float32(T0)) != T0


def test_time_windows_are_exact_to_the_millisecond(store: SqliteCatalog) -> None:
    # times 1 ms apart share one float32 value: only the exact checks tell them apart
    items = [make_item(i, time=T0 + i - 2) for i in range(5)]  # T0-2 .. T0+2
    items.append(make_item(10, time=T0 - HOUR, end_time=T0 - 1))  # ends 1 ms before T0
    items.append(make_item(11, time=T0 + 1, end_time=T0 + HOUR))
    items.append(make_item(12))  # no time
    store.add_items(DS, items)
    box = Extent(-100, -100, 1000, 1000)

    def found(t1: int | None, t2: int | None) -> set[str]:
        return names(store.find_items(DS, ItemQuery(extent=box, time=(t1, t2))))

    assert found(T0, T0) == {"item_2"}
    assert found(T0 + 1, T0 + 1) == {"item_3", "item_11"}
    assert found(T0 - 1, T0 - 1) == {"item_1", "item_10"}
    assert found(T0 + 3, None) == {"item_11"}
    assert found(None, T0 - 3) == {"item_10"}
    assert found(T0 - 2, T0 + 2) == {f"item_{i}" for i in (0, 1, 2, 3, 4, 10, 11)}
    assert found(T0 + HOUR + 1, None) == set()
    assert found(None, T0 - HOUR - 1) == set()
    assert found(None, None) == {f"item_{i}" for i in (0, 1, 2, 3, 4, 10, 11)}
    # without a time every item matches, the untimed one included
    assert len(store.find_items(DS, ItemQuery(extent=box))) == 8
    assert store.count_items(DS, ItemQuery(extent=box, time=(T0, T0 + 1))) == 3


def test_random_windows_match_brute_force(store: SqliteCatalog) -> None:
    rng = random.Random(11)
    items = []
    for i in range(400):
        t = T0 + rng.randrange(0, 48) * HOUR + rng.choice([0, 1, -1, 50_000]) if i % 9 else None
        end = None if t is None or rng.random() < 0.6 else t + rng.randrange(0, 5) * HOUR
        x, y = rng.uniform(0, 900), rng.uniform(0, 900)
        items.append(make_item(i, x=x, y=y, size=rng.uniform(1, 200), time=t, end_time=end))
    store.add_items(DS, items)
    for _ in range(150):
        x, y = rng.uniform(-50, 950), rng.uniform(-50, 950)
        box = Extent(x, y, x + rng.uniform(0, 300), y + rng.uniform(0, 300))
        edge = T0 + rng.randrange(0, 48) * HOUR + rng.choice([0, 1, -1])
        t1 = rng.choice([None, edge, edge - HOUR])
        t2 = rng.choice([None, edge, edge + rng.randrange(0, 3) * HOUR])
        want = set()
        for it in items:
            if not it.extent.intersects(box) or it.time is None:
                continue
            end = it.end_time if it.end_time is not None else it.time
            if (t2 is None or it.time <= t2) and (t1 is None or end >= t1):
                want.add(it.name)
        assert names(store.find_items(DS, ItemQuery(extent=box, time=(t1, t2)))) == want


# -- time comparisons of a where clause narrow the R*Tree too --------------------------------


def test_where_time_bounds() -> None:
    bounds = where_time_bounds
    assert bounds(parse_where("AcquisitionDate >= 5")) == (5.0, None)
    assert bounds(parse_where("StdTime < 7 AND Name = 'a'")) == (None, 7.0)
    assert bounds(parse_where("3 <= StdTimeEnd AND StdTime <= 9 AND StdTime > 4")) == (4.0, 9.0)
    assert bounds(parse_where("StdTime = 6")) == (6.0, 6.0)
    assert bounds(parse_where("StdTime BETWEEN 2 AND 8")) == (2.0, 8.0)
    # nothing is implied through OR, NOT, <>, other fields or text
    assert bounds(parse_where("StdTime > 5 OR Name = 'a'")) == (None, None)
    assert bounds(parse_where("NOT StdTime > 5")) == (None, None)
    assert bounds(parse_where("StdTime <> 5")) == (None, None)
    assert bounds(parse_where("StdTime NOT BETWEEN 2 AND 8")) == (None, None)
    assert bounds(parse_where("LowPS > 5")) == (None, None)
    assert bounds(None) == (None, None)


def test_where_on_time_matches_python_evaluation(store: SqliteCatalog) -> None:
    rng = random.Random(2)
    items = []
    for i in range(300):
        t = T0 + rng.randrange(0, 30) * DAY + rng.choice([0, 1, -1]) if i % 7 else None
        end = None if t is None or i % 3 else t + rng.randrange(0, 4) * DAY
        items.append(
            make_item(i, x=rng.uniform(0, 500), y=rng.uniform(0, 500), time=t, end_time=end)
        )
    store.add_items(DS, items)
    stored = store.find_items(DS, ItemQuery())
    box = Extent(100, 100, 400, 400)
    for _ in range(60):
        edge = T0 + rng.randrange(0, 30) * DAY + rng.choice([0, 1, -1])
        text = rng.choice(
            [
                f"AcquisitionDate >= {edge}",
                f"StdTime < {edge}",
                f"StdTime <= {edge} AND StdTimeEnd >= {edge - 2 * DAY}",
                f"StdTimeEnd > {edge}",
                f"StdTime = {edge}",
                f"StdTime BETWEEN {edge - DAY} AND {edge + 1}",
                f"{edge} > AcquisitionDate",
                f"StdTime > {edge} OR OBJECTID < 20",
            ]
        )
        where = parse_where(text)
        want = {
            it.name
            for it in stored
            if it.extent.intersects(box) and evaluate(where, item_attributes(it))
        }
        got = names(store.find_items(DS, ItemQuery(extent=box, where=where)))
        assert got == want, text
    plan = store.explain(DS, ItemQuery(extent=box, where=parse_where(f"StdTime >= {T0}")))
    assert "D7" in plan[0] and "B6" not in plan[0], plan
    plan = store.explain(DS, ItemQuery(extent=box, where=parse_where(f"StdTime < {T0}")))
    assert "B6" in plan[0] and "D7" not in plan[0], plan


# -- maintenance: adds, replacements, removals ----------------------------------------------


def test_adds_replacements_and_removals_keep_the_rtree_in_step(store: SqliteCatalog) -> None:
    box = Extent(-10, -10, 1000, 1000)
    first = make_item(1, path="/live/a.tif", time=T0, mtime=1)
    store.add_items(DS, [first, make_item(2, time=T0 + HOUR), make_item(3)])
    assert_rtree_matches_items(store)
    assert names(store.find_items(DS, ItemQuery(extent=box, time=(T0, T0)))) == {"item_1"}
    # the file changes: its new acquisition time must be found, the old one must be gone
    moved = make_item(1, path="/live/a.tif", time=T0 + 5 * HOUR, mtime=2)
    result = store.add_items(DS, [moved])
    assert result.replaced_paths == ("/live/a.tif",)
    assert_rtree_matches_items(store)
    assert store.find_items(DS, ItemQuery(extent=box, time=(T0, T0))) == []
    hits = store.find_items(DS, ItemQuery(extent=box, time=(T0 + 5 * HOUR, T0 + 5 * HOUR)))
    assert [it.id for it in hits] == list(result.added)
    # removals take their R*Tree rows with them
    assert store.remove_items(DS, RemoveFilter(older_than=T0 + 2 * HOUR)) == 1
    assert_rtree_matches_items(store)
    assert store.find_items(DS, ItemQuery(extent=box, time=(None, T0 + 2 * HOUR))) == []
    assert store.remove_items(DS, RemoveFilter(where=parse_where("StdTime IS NULL"))) == 1
    assert_rtree_matches_items(store)
    assert len(rtree_rows(store)) == 1
    store.delete_dataset(DS)
    assert rtree_rows(store) == {}


# -- migration from schema version 3 --------------------------------------------------------


def _version_3_catalog(db: Path, items: Sequence[RasterItem]) -> None:
    """A catalog file as livemosaic 0004-less wrote it: migrations 1-3, a 7-column R*Tree."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied INTEGER NOT NULL)"
        )
        for version, name, sql in migrations():
            if version > 3:
                continue
            for statement in split_statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, 0)", (version, name))
        conn.execute("INSERT INTO datasets (name, crs, created) VALUES (?, 'EPSG:3857', 0)", (DS,))
        conn.execute("INSERT INTO summary (dataset_id) VALUES (1)")
        for item in items:
            oid = conn.execute(INSERT_ITEM, item_row(item, 1, 0)).lastrowid
            e = item.extent
            conn.execute(
                "INSERT INTO items_rtree VALUES (?, ?, ?, ?, ?, 1, 1)",
                (oid, e.xmin, e.xmax, e.ymin, e.ymax),
            )
        conn.execute("COMMIT")
        columns = [r[1] for r in conn.execute("PRAGMA table_info(items_rtree)")]
        assert columns == ["id", "xmin", "xmax", "ymin", "ymax", "ds_min", "ds_max"]
    finally:
        conn.close()


def test_migration_rebuilds_the_rtree_from_existing_items(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    items = [make_item(i, x=i * 20.0, y=0.0, time=T0 + i * HOUR) for i in range(6)]
    items.append(make_item(6, x=0.0, y=0.0, time=T0 - DAY, end_time=T0 + DAY))
    items.append(make_item(7, x=0.0, y=0.0))  # no time
    _version_3_catalog(db, items)
    store = SqliteCatalog(db)
    try:
        assert store.schema_version == migrations()[-1][0]  # 0004 and every later migration
        conn = sqlite3.connect(db)
        columns = [r[1] for r in conn.execute("PRAGMA table_info(items_rtree)")]
        conn.close()
        assert columns[-2:] == ["t_min", "t_max"]
        assert_rtree_matches_items(store)
        untimed = next(b for oid, b in rtree_rows(store).items() if oid == 8)
        assert untimed[0] <= UNTIMED_RANGE[0] and untimed[1] >= UNTIMED_RANGE[1]
        box = Extent(-1, -1, 200, 20)
        assert len(store.find_items(DS, ItemQuery(extent=box))) == 8
        found = store.find_items(DS, ItemQuery(extent=box, time=(T0 + 2 * HOUR, T0 + 2 * HOUR)))
        assert names(found) == {"item_2", "item_6"}  # item_6 spans two days around T0
        found = store.find_items(DS, ItemQuery(extent=Extent(0, 0, 1, 1), time=(T0, T0)))
        assert names(found) == {"item_0", "item_6"}
        plan = store.explain(DS, ItemQuery(extent=box, time=(T0, T0)))
        assert "B6" in plan[0] and "D7" in plan[0], plan
        # new items after the migration go into the new R*Tree
        store.add_items(DS, [make_item(20, x=5.0, y=5.0, time=T0 + 30 * HOUR)])
        assert_rtree_matches_items(store)
        found = store.find_items(DS, ItemQuery(extent=box, time=(T0 + 30 * HOUR, None)))
        assert names(found) == {"item_20"}
    finally:
        store.close()
