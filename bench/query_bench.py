"""Catalog ``query`` answers at two catalog sizes: store aggregates vs loading every item.

Builds SQLite catalogs of synthetic items (the ``grid`` layout of lookup_bench.py) and times,
per size, what the ``query`` operation asks of the catalog for

* ``returnExtentOnly`` and ``returnCountOnly`` of the whole catalog,
* ``outStatistics`` (count, avg, min over the whole catalog),
* ``returnDistinctValues`` of one field,
* ``returnIdsOnly`` of one time window (1 % of the items),
* a query polygon of 3 x 3 items (footprint test on its bounding-box candidates),

each through :class:`~livemosaic.core.catalog_search.CatalogSearch` (store aggregates, as the
server does now) and, for comparison, by loading every matching item and aggregating in
Python (as the server did before). It prints medians and the ratio largest / smallest size.

    .venv/bin/python bench/query_bench.py            # 1k and 100k items
    .venv/bin/python bench/query_bench.py --quick    # 1k and 20k items (under a minute)
    .venv/bin/python bench/query_bench.py --sizes 1000,1000000   # the 1M figure (minutes)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine_line, ms, table
from lookup_bench import DATASET, STEP, T0, X0, Y0, Layout

from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.core.catalog_search import CatalogSearch, CatalogSelection
from livemosaic.core.fields import item_attributes
from livemosaic.core.models import Extent, Geometry, MosaicDataset
from livemosaic.core.ports import FieldStatistic, ItemQuery

EVERYTHING = ItemQuery()
STATS = (
    FieldStatistic("count", "OBJECTID", "n"),
    FieldStatistic("avg", "CenterX", "cx"),
    FieldStatistic("min", "StdTime", "first"),
)


def build(folder: Path, size: int, batch: int) -> SqliteCatalog:
    """A catalog with ``size`` grid items (items one millisecond apart)."""
    layout = Layout.of("grid", size)
    store = SqliteCatalog(folder / f"query_{size}.db")
    store.create_dataset(MosaicDataset(name=DATASET, crs="EPSG:3857"))
    for first in range(0, size, batch):
        store.add_items(DATASET, [layout.item(i) for i in range(first, min(first + batch, size))])
    return store


def cases(
    store: SqliteCatalog, size: int
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """(store aggregate, load everything) per query kind."""
    search = CatalogSearch(store)
    every = CatalogSelection(DATASET, ItemQuery())
    window = ItemQuery(time=(T0, T0 + max(size // 100, 1) - 1))
    box = Extent(X0 + STEP, Y0 - 4 * STEP, X0 + 3.5 * STEP, Y0 - 1.5 * STEP)
    polygon = CatalogSelection(DATASET, ItemQuery(extent=box), Geometry.from_extent(box))

    def load(query: ItemQuery = EVERYTHING) -> list[dict[str, Any]]:
        return [item_attributes(it) for it in store.find_items(DATASET, query)]

    def stats_by_loading() -> Any:
        rows = load()
        xs = [r["CenterX"] for r in rows]
        return len(rows), sum(xs) / len(xs), min(r["StdTime"] for r in rows)

    return {
        "extent + count": (
            lambda: search.extent(every),
            lambda: Extent.union_all(it.extent for it in store.find_items(DATASET, ItemQuery())),
        ),
        "statistics": (lambda: search.statistics(every, STATS), stats_by_loading),
        "distinct PixelType": (
            lambda: search.distinct(every, ["PixelType"]),
            lambda: {r["PixelType"] for r in load()},
        ),
        "ids of 1 % (time)": (
            lambda: search.ids(CatalogSelection(DATASET, window)),
            lambda: [r["OBJECTID"] for r in load(window)],
        ),
        "polygon count": (lambda: search.count(polygon), lambda: search.find(polygon)),
    }


def median_seconds(call: Callable[[], Any], budget: float, at_most: int) -> float:
    """Median duration of repeated calls within a time budget."""
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < at_most and (not times or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="two catalog sizes, smallest first")
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per measurement")
    parser.add_argument("--batch", type=int, default=5000, help="items per add_items call")
    parser.add_argument("--quick", action="store_true", help="1k and 20k items (under a minute)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    if args.quick:
        sizes, args.seconds = [1000, 20000], 1.0
    if len(sizes) != 2:
        parser.error("give two sizes to compare")
    print("query_bench: catalog query answers vs. catalog size (SQLite catalog)")
    print(machine_line())
    folder = Path(tempfile.mkdtemp(prefix="livemosaic-query-bench-"))
    try:
        results: dict[str, dict[int, tuple[float, float]]] = {}
        for size in sizes:
            store = build(folder, size, args.batch)
            for name, (aggregate, loading) in cases(store, size).items():
                results.setdefault(name, {})[size] = (
                    median_seconds(aggregate, args.seconds, 1000),
                    median_seconds(loading, args.seconds, 20),
                )
            store.close()
        small, large = sizes
        rows = []
        for name, by_size in results.items():
            (a1, l1), (a2, l2) = by_size[small], by_size[large]
            rows.append([name, ms(a1), ms(a2), f"{a2 / a1:.1f}", ms(l1), ms(l2), f"{l2 / a2:.0f}x"])
        header = [
            "query",
            f"store {small}",
            f"store {large}",
            "growth",
            f"load-all {small}",
            f"load-all {large}",
            f"saved at {large}",
        ]
        print(table(header, rows))
        print("store = CatalogSearch over the store (what the server does); load-all = every")
        print("matching item loaded and aggregated in Python (what it did before). growth =")
        print("store time at the large size / small size (1.0 = flat with catalog size).")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
