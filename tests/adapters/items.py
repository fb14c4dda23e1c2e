"""Synthetic catalog items for catalog-store tests, and worker loops for process tests."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from livemosaic.core.models import BandStats, Extent, PixelType, RasterItem
from livemosaic.core.ports import ItemQuery, RemoveFilter

DAY = 86_400_000


def make_item(
    i: int,
    *,
    x: float | None = None,
    y: float | None = None,
    size: float = 10.0,
    path: str | None = None,
    time: int | None = None,
    end_time: int | None = None,
    variable: str | None = None,
    dimensions: Mapping[str, float] | None = None,
    attributes: Mapping[str, Any] | None = None,
    file_size: int = 1000,
    mtime: int = 1,
    pixel_type: PixelType = "U8",
    band_count: int = 1,
    stats: tuple[BandStats, ...] | None = None,
    nodata: float | None = 0.0,
    low_ps: float = 1.0,
    high_ps: float = 8.0,
    cell_y_ratio: float = 1.0,
    name: str | None = None,
) -> RasterItem:
    """A square item at (x, y) of side ``size`` with one stats entry per band."""
    x0 = float(i * 5) if x is None else x
    y0 = float(i * 3) if y is None else y
    ext = Extent(x0, y0, x0 + size, y0 + size)
    ring = ((x0, y0), (x0, y0 + size), (x0 + size, y0 + size), (x0 + size, y0), (x0, y0))
    if stats is None:
        stats = tuple(
            BandStats(float(b), 100.0 + b + i % 7, 50.0 + i % 11, 5.0 + b, 100)
            for b in range(band_count)
        )
    return RasterItem(
        path=path or f"/data/set/item_{i}.tif",
        uri=path or f"/data/set/item_{i}.tif",
        name=name or f"item_{i}",
        bands=tuple(range(1, band_count + 1)),
        footprint=ring,
        extent=ext,
        native_crs="EPSG:3857",
        native_extent=ext,
        width=int(size),
        height=int(size),
        cell_size_x=1.0,
        cell_size_y=cell_y_ratio,
        low_ps=low_ps,
        high_ps=high_ps,
        pixel_type=pixel_type,
        band_names=tuple(f"Band_{b + 1}" for b in range(band_count)),
        nodata=nodata,
        mask_kind="nodata" if nodata is not None else "none",
        stats=stats,
        file_size=file_size,
        file_mtime_ns=mtime,
        time=time,
        end_time=end_time,
        variable=variable,
        dimensions=dict(dimensions or {}),
        attributes=dict(attributes or {}),
    )


def random_item(rng: random.Random, i: int, *, folder: str = "/data/rand") -> RasterItem:
    """An item with random extent, time, variable, StdZ, pixel type, bands and statistics."""
    band_count = rng.choice([1, 1, 2, 3])
    variable = rng.choice([None, "temp", "salt", "Temp"])
    t0 = 1_700_000_000_000 + rng.randrange(0, 60) * DAY if rng.random() < 0.85 else None
    end = None
    if t0 is not None and rng.random() < 0.3:
        end = t0 + rng.randrange(1, 10) * DAY
    dims: dict[str, float] = {}
    if variable is not None:
        dims["StdZ"] = float(rng.choice([0, -5, -10, -50]))
        if rng.random() < 0.5:
            dims["level"] = float(rng.choice([1, 2, 3]))
    stats = []
    for _ in range(band_count):
        lo = rng.uniform(-100, 100)
        if rng.random() < 0.1:
            stats.append(BandStats(float("nan"), float("nan"), float("nan"), float("nan"), 0))
        else:
            stats.append(
                BandStats(
                    lo, lo + rng.uniform(1, 50), lo + 5, rng.uniform(0.5, 5), rng.randrange(1, 500)
                )
            )
    return make_item(
        i,
        x=rng.uniform(-1000, 1000),
        y=rng.uniform(-500, 500),
        size=rng.uniform(1, 100),
        path=f"{folder}/{rng.choice('abc')}/f{i}.tif",
        time=t0,
        end_time=end,
        variable=variable,
        dimensions=dims,
        attributes={"unit": "degC", "dimension_units": {"StdZ": "m"}} if variable == "temp" else {},
        pixel_type=rng.choice(["U8", "U16", "F32"]),
        band_count=band_count,
        stats=tuple(stats),
        nodata=rng.choice([None, 0.0, -9999.0]),
        low_ps=rng.choice([0.5, 1.0, 2.0, 10.0]),
        high_ps=rng.choice([16.0, 32.0, 64.0]),
        cell_y_ratio=rng.choice([1.0, 2.0]),
        file_size=rng.randrange(100, 10_000),
        mtime=rng.randrange(1, 1_000_000),
    )


# -- process workers (module level so spawned processes can import them) -------------------

BATCH = 4
PIXELS_PER_ITEM = 100


def batch_items(prefix: str, b: int) -> list[RasterItem]:
    """One writer batch: BATCH items under ``/<prefix>/<b>/``, each with a variable."""
    return [
        make_item(
            b * BATCH + k,
            path=f"/{prefix}/{b}/{k}.tif",
            time=1_700_000_000_000 + b * DAY,
            variable="v" if k % 2 else "w",
            dimensions={"StdZ": float(k)},
            stats=(BandStats(0.0, 10.0, 5.0, 1.0, PIXELS_PER_ITEM),),
        )
        for k in range(BATCH)
    ]


def writer_loop(db: str, dataset: str, prefix: str, batches: int, go: Any = None) -> None:
    """Add batches in a loop (after ``go`` is set), removing an older batch every fifth one."""
    from livemosaic.adapters.catalog.sqlite import SqliteCatalog

    store = SqliteCatalog(db)
    try:
        if go is not None:
            go.wait(30)
        for b in range(batches):
            store.add_items(dataset, batch_items(prefix, b))
            if b % 5 == 4:
                store.remove_items(dataset, RemoveFilter(path=f"/{prefix}/{b - 2}/"))
            time.sleep(0.002)
    finally:
        store.close()


def check_snapshot(store: Any, dataset: str) -> list[str]:
    """Consistency problems seen in one round of reads (empty when all is well)."""
    problems: list[str] = []
    s1 = store.summary(dataset)
    if s1.item_count % BATCH:
        problems.append(f"summary item_count {s1.item_count} is not a whole number of batches")
    if sum(v.item_count for v in s1.variables) != s1.item_count:
        problems.append(f"variable counts {s1.variables} disagree with {s1.item_count}")
    if s1.item_count and s1.band_stats[0].count != s1.item_count * PIXELS_PER_ITEM:
        problems.append(f"band pixel count {s1.band_stats[0].count} for {s1.item_count} items")
    if (s1.extent is None) != (s1.item_count == 0):
        problems.append(f"extent {s1.extent} with {s1.item_count} items")
    found = store.find_items(dataset, ItemQuery())
    if len(found) % BATCH:
        problems.append(f"find_items returned {len(found)} items, not whole batches")
    inside = store.count_items(dataset, ItemQuery(extent=Extent(-1e9, -1e9, 1e9, 1e9)))
    if inside % BATCH:
        problems.append(f"count_items(extent) returned {inside}, not whole batches")
    s2 = store.summary(dataset)
    if s1.version == s2.version and len(found) != s1.item_count:
        problems.append(f"version {s1.version}: summary says {s1.item_count}, found {len(found)}")
    return problems


def reader_loop(db: str, dataset: str, ready: Any, stop: Any, out: Any) -> None:
    """Read until ``stop`` is set; put (rounds, versions seen, problems) on ``out``."""
    from livemosaic.adapters.catalog.sqlite import SqliteCatalog

    store = SqliteCatalog(db)
    rounds = 0
    versions: set[int] = set()
    problems: list[str] = []
    ready.set()
    try:
        while not stop.is_set() or rounds < 5:
            try:
                problems += check_snapshot(store, dataset)
                versions.add(store.summary(dataset).version)
            except Exception as exc:  # report every failure to the parent
                problems.append(f"{type(exc).__name__}: {exc}")
            rounds += 1
    finally:
        store.close()
        out.put((rounds, len(versions), problems[:20]))
