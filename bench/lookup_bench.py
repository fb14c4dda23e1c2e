"""Item lookup for one request at 1k and 100k catalog items (SQLite catalog).

Builds catalogs of synthetic items (each item 1000 m square, neighbours overlapping by 5 %),
inserted with bulk ``add_items`` batches, in two layouts:

* ``grid``: every item at its own place (a survey): the catalog grows in area;
* ``stack``: 100 places (10 x 10) seen again every hour (a live feed): the catalog grows in
  depth, ``size / 100`` acquisitions per place.

Then, in alternating rounds so that machine noise hits every size alike, it times the item
lookup of one exportImage request — a random 1500 m square inside the catalog, 4-9 items:

* ``find_items``: the catalog query exportImage sends (extent [+ time], 1000-candidate limit);
* ``select_items``: ``ImageExporter``'s whole item selection (query, resolution filter,
  mosaic-method order, item cap);
* for ``stack`` also the same square without a time (a live service's default image), where
  every acquisition under the square matches, up to the 1000-candidate limit;
* ``summary()``, which every publish and refresh reads.

It prints per-call median and p99 per size and the ratio largest / smallest size (a lookup
that does not grow with the catalog stays near 1.0), plus SQLite's query plan.

    .venv/bin/python bench/lookup_bench.py            # 1k and 100k items, both layouts
    .venv/bin/python bench/lookup_bench.py --quick    # 1k and 20k items, fewer lookups
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import Latency, machine_line, ms, table

from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.raster import RasterEncoder, RasterioProjector, RasterioSource
from livemosaic.core.export import ExportLimits, ImageExporter
from livemosaic.core.models import (
    BandStats,
    Extent,
    MosaicDataset,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
)
from livemosaic.core.mosaic_rules import default_mosaic_rule
from livemosaic.core.ports import ItemQuery
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry

ITEM_SIZE = 1000.0  # metres (1000 x 1000 pixels of 1 m)
STEP = 950.0  # 5 % overlap
REQUEST_SIZE = 1500.0  # a request square covers 2-3 items per axis
X0, Y0 = 1_000_000.0, 6_000_000.0  # top-left corner, EPSG:3857
T0 = 1_700_000_000_000  # epoch ms of the first acquisition
HOUR = 3_600_000
STACK_SIDE = 10  # the stack layout has 10 x 10 places
DATASET = "bench_lookup"


def synthetic_item(index: int, col: int, row: int, when: int) -> RasterItem:
    """An 8-bit RGB scene at grid cell (col, row) acquired at ``when`` (epoch ms)."""
    xmin = X0 + col * STEP
    ymax = Y0 - row * STEP
    ext = Extent(xmin, ymax - ITEM_SIZE, xmin + ITEM_SIZE, ymax)
    ring = (
        (ext.xmin, ext.ymax),
        (ext.xmax, ext.ymax),
        (ext.xmax, ext.ymin),
        (ext.xmin, ext.ymin),
        (ext.xmin, ext.ymax),
    )
    path = f"/bench/scenes/r{row:04d}/c{col:04d}/scene_{index:07d}.tif"
    stats = BandStats(10.0 + index % 7, 240.0, 120.0 + index % 13, 30.0, 1_000_000)
    return RasterItem(
        path=path,
        uri=path,
        name=f"scene_{index:07d}",
        bands=(1, 2, 3),
        footprint=ring,
        extent=ext,
        native_crs="EPSG:3857",
        native_extent=ext,
        width=1000,
        height=1000,
        cell_size_x=1.0,
        cell_size_y=1.0,
        low_ps=1.0,
        high_ps=8.0,
        pixel_type="U8",
        band_names=("Red", "Green", "Blue"),
        nodata=None,
        mask_kind="none",
        stats=(stats, stats, stats),
        file_size=3_000_000 + index,
        file_mtime_ns=1_700_000_000_000_000_000 + index,
        time=when,
        overview_count=3,
    )


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the items of a catalog of some size lie: ``cols`` x ``rows`` places, ``depth`` deep."""

    name: str
    cols: int
    rows: int
    full_rows: int  # rows every place of which holds items
    depth: int

    @staticmethod
    def of(name: str, size: int) -> Layout:
        """The grid or stack layout for ``size`` items."""
        if name == "stack":
            depth = max(1, size // STACK_SIDE**2)
            return Layout(name, STACK_SIDE, STACK_SIDE, STACK_SIDE, depth)
        side = max(1, math.isqrt(size))
        return Layout(name, side, math.ceil(size / side), max(size // side, 1), 1)

    def item(self, index: int) -> RasterItem:
        """Item ``index``: places fill row by row; a stack adds one acquisition per hour."""
        place, when = index % (self.cols * self.rows), index // (self.cols * self.rows)
        col, row = place % self.cols, place // self.cols
        return synthetic_item(index, col, row, T0 + when * HOUR + (0 if self.depth > 1 else index))

    def extent(self) -> Extent:
        """Where requests may fall: the full rows of places (the last row may be partial)."""
        bottom = Y0 - (self.full_rows - 1) * STEP - ITEM_SIZE
        return Extent(X0, bottom, X0 + (self.cols - 1) * STEP + ITEM_SIZE, Y0)


@dataclass
class Catalog:
    """One benchmark catalog: its store, layout, a published snapshot and an exporter."""

    size: int
    layout: Layout
    store: SqliteCatalog
    snapshot: ServiceSnapshot
    exporter: ImageExporter
    batch_seconds: list[float]
    batch_sizes: list[int]


def build_catalog(folder: Path, layout_name: str, size: int, batch: int) -> Catalog:
    """A catalog file with ``size`` items added in batches of ``batch`` (one transaction each)."""
    layout = Layout.of(layout_name, size)
    store = SqliteCatalog(folder / f"{layout_name}_{size}.db")
    store.create_dataset(MosaicDataset(name=DATASET, crs="EPSG:3857"))
    batch_seconds, batch_sizes = [], []
    for first in range(0, size, batch):
        items = [layout.item(i) for i in range(first, min(first + batch, size))]
        start = time.perf_counter()
        store.add_items(DATASET, items)
        batch_seconds.append(time.perf_counter() - start)
        batch_sizes.append(len(items))
    projector = RasterioProjector()
    publisher = Publisher(store, ServiceRegistry(), projector)
    snapshot = publisher.publish(ServiceDefinition(name=f"Lookup{size}", dataset=DATASET))
    exporter = ImageExporter(
        store, RasterioSource(["/bench"]), projector, RasterEncoder(), ExportLimits(max_items=20)
    )
    return Catalog(size, layout, store, snapshot, exporter, batch_seconds, batch_sizes)


@dataclass(frozen=True, slots=True)
class Request:
    """The extent (and time window) of one request."""

    box: Extent
    time: tuple[int | None, int | None] | None


def requests(cat: Catalog, count: int, seed: int, timed: bool) -> list[Request]:
    """Random request squares inside the catalog; with ``timed`` one acquisition's instant."""
    rng = random.Random(seed)
    ext = cat.layout.extent()
    out = []
    for _ in range(count):
        x = rng.uniform(ext.xmin, ext.xmax - REQUEST_SIZE)
        y = rng.uniform(ext.ymin, ext.ymax - REQUEST_SIZE)
        when = T0 + rng.randrange(cat.layout.depth) * HOUR
        window = (when, when) if timed else None
        out.append(Request(Extent(x, y, x + REQUEST_SIZE, y + REQUEST_SIZE), window))
    return out


@dataclass
class Timings:
    """Per-call durations (seconds) of one query kind on one catalog, and items found."""

    find: list[float] = field(default_factory=list)
    select: list[float] = field(default_factory=list)
    found: list[int] = field(default_factory=list)


def time_round(cat: Catalog, reqs: list[Request], out: Timings, seconds: float) -> None:
    """Time find_items, then select_items, for each request (each loop stops at ``seconds``)."""
    ds = cat.snapshot.dataset.name
    rule = default_mosaic_rule(cat.snapshot.definition)
    clock = time.perf_counter
    deadline = clock() + seconds / 2
    for req in reqs:
        if clock() > deadline:
            break
        t0 = clock()
        items = cat.store.find_items(ds, ItemQuery(extent=req.box, time=req.time, limit=1000))
        out.find.append(clock() - t0)
        out.found.append(len(items))
    deadline = clock() + seconds / 2
    for req in reqs:
        if clock() > deadline:
            break
        t0 = clock()
        cat.exporter.select_items(cat.snapshot, rule, req.box, "EPSG:3857", 512, req.time)
        out.select.append(clock() - t0)


def time_summaries(cat: Catalog, count: int) -> list[float]:
    """Durations of ``count`` summary() calls."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        cat.store.summary(DATASET)
        out.append(time.perf_counter() - t0)
    return out


# per layout: (title, request carries a time, few lookups because each returns many items)
KINDS = {
    "grid": [("extent", False, False)],
    "stack": [("extent + time", True, False), ("extent, no time", False, True)],
}


def ratio(large: list[float], small: list[float]) -> str:
    """Median of ``large`` over median of ``small``."""
    return f"{Latency.of(large).p50 / Latency.of(small).p50:.2f}"


def report_kind(title: str, cats: list[Catalog], timings: dict[int, Timings]) -> None:
    """Print the table and ratio of one layout and query kind."""
    rows = []
    for cat in cats:
        t = timings[cat.size]
        f, s = Latency.of(t.find), Latency.of(t.select)
        found = t.found or [0]
        rows.append(
            [
                f"{cat.size:,}",
                str(len(t.find)),
                f"{min(found)}-{max(found)} (mean {sum(found) / len(found):.1f})",
                ms(f.p50),
                ms(f.p99),
                ms(s.p50),
                ms(s.p99),
            ]
        )
    head = ["items", "n", "items found", "find p50 ms", "find p99", "select p50 ms", "select p99"]
    print(f"\n{title}")
    print(table(head, rows))
    small, large = timings[cats[0].size], timings[cats[-1].size]
    print(
        f"ratio {cats[-1].size:,} / {cats[0].size:,} items (median): "
        f"find_items {ratio(large.find, small.find)}, "
        f"select_items {ratio(large.select, small.select)}  (1.00 = does not grow)"
    )


def run_layout(name: str, sizes: list[int], args: argparse.Namespace, folder: Path) -> None:
    """Build the catalogs of one layout, time every query kind in rounds, print the figures."""
    cats: list[Catalog] = []
    try:
        for size in sizes:
            cat = build_catalog(folder, name, size, args.batch)
            cats.append(cat)
            took = sum(cat.batch_seconds)
            mb = sum(p.stat().st_size for p in folder.glob(f"{name}_{size}.db*")) / 1e6
            per_k = [t / n * 1000 for t, n in zip(cat.batch_seconds, cat.batch_sizes, strict=True)]
            first, last = statistics.median(per_k[:3]), statistics.median(per_k[-3:])
            shape = f"{cat.layout.cols}x{cat.layout.rows} places, {cat.layout.depth} deep"
            print(
                f"[{name}] built {size:,} items ({shape}) in {took:.1f} s, "
                f"{size / took:,.0f} items/s, {mb:.0f} MB; add_items per 1000 items: "
                f"first batches {first * 1000:.0f} ms, last batches {last * 1000:.0f} ms"
            )
        for kind, timed, heavy in KINDS[name]:
            timings = {c.size: Timings() for c in cats}
            lookups = max(20, args.lookups // 20) if heavy else args.lookups
            per_round = max(1, lookups // args.rounds)
            for rnd in range(args.rounds):
                for cat in cats if rnd % 2 == 0 else list(reversed(cats)):
                    reqs = requests(cat, per_round, args.seed + rnd, timed)
                    time_round(cat, reqs, timings[cat.size], args.round_seconds)
            report_kind(f"[{name}] {kind}", cats, timings)
        summaries: dict[int, list[float]] = {c.size: [] for c in cats}
        for rnd in range(args.rounds):
            for cat in cats if rnd % 2 == 0 else list(reversed(cats)):
                summaries[cat.size] += time_summaries(cat, 5)
        small, large = cats[0], cats[-1]
        print(
            f"[{name}] summary(): "
            + ", ".join(
                f"{c.size:,} items p50 {ms(Latency.of(summaries[c.size]).p50)} ms" for c in cats
            )
            + f"; ratio {ratio(summaries[large.size], summaries[small.size])}"
        )
        probe = requests(large, 1, 0, timed=name == "stack")[0]
        plan = large.store.explain(DATASET, ItemQuery(extent=probe.box, time=probe.time))
        print(f"[{name}] query plan at {large.size:,} items: " + " | ".join(plan))
    finally:
        for cat in cats:
            cat.store.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,100000", help="catalog sizes, comma-separated (smallest first)"
    )
    parser.add_argument(
        "--layouts", default="grid,stack", help="grid, stack or both (comma-separated)"
    )
    parser.add_argument("--lookups", type=int, default=1000, help="timed lookups per size")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds")
    parser.add_argument(
        "--round-seconds", type=float, default=2.0, help="time limit per size and round"
    )
    parser.add_argument("--batch", type=int, default=5000, help="items per add_items call")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="1k and 20k items, 200 lookups (about 40 s)"
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    if args.quick:
        sizes, args.lookups, args.round_seconds = [1000, 20000], 200, 1.0
    if len(sizes) < 2:
        parser.error("give at least two sizes to compare")
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    if not set(layouts) <= set(KINDS):
        parser.error(f"unknown layout in {args.layouts!r}; use grid and/or stack")
    print("lookup_bench: item lookup for one request vs. catalog size (SQLite catalog)")
    print(machine_line())
    folder = Path(tempfile.mkdtemp(prefix="livemosaic-lookup-bench-"))
    try:
        for name in layouts:
            run_layout(name, sizes, args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
