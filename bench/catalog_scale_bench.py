"""Catalog operations at growing catalog sizes, SQLite against PostgreSQL.

Builds a catalog of synthetic scenes (the ``grid`` layout of ``lookup_bench.py``: each item
1000 m square at its own place, one acquisition a millisecond apart) in each store, with
bulk ``add_items`` batches, then times per call:

* ``lookup``: the item lookup of one exportImage request (``find_items`` of a random 1500 m
  square, the 1000-candidate limit), 4-9 items;
* ``time``: ``find_items`` of a 10 ms time window (about 10 items: the grid's acquisitions
  are a millisecond apart);
* ``bbox``: ``count_items`` of a random 10 km square;
* ``refresh``: ``Publisher.republish`` — read the summary, build and store the snapshot —
  which is what Refresh Service does once the items are in.

It prints median and p99 per call for every store and size (a lookup that does not grow with
the catalog keeps the same figures at every size), plus the load rate. PostgreSQL runs when
``LIVEMOSAIC_TEST_POSTGRES_URL`` (or ``--postgres``) names a database of a server the
benchmark may create a database on (dropped afterwards); after loading it runs ``ANALYZE``
as autovacuum would.

    .venv/bin/python bench/catalog_scale_bench.py            # 10k and 100k items
    .venv/bin/python bench/catalog_scale_bench.py --quick    # 2k and 10k items, fewer calls
    .venv/bin/python bench/catalog_scale_bench.py --million  # 10k, 100k and 1M items (long)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import Latency, machine_line, ms, table
from lookup_bench import DATASET, REQUEST_SIZE, STEP, T0, Layout

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.raster import RasterioProjector
from livemosaic.core.models import Extent, MosaicDataset, ServiceDefinition
from livemosaic.core.ports import CatalogStore, ItemQuery
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 2000
CANDIDATES = 1000  # exportImage's candidate limit
BBOX_SIZE = 10 * STEP
TIME_WINDOW_MS = 10  # the grid's acquisitions are 1 ms apart


@contextmanager
def sqlite_store(folder: Path, size: int) -> Iterator[CatalogStore]:
    store = open_catalog(f"sqlite:///{folder / f'scale_{size}.db'}")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def postgres_store(base: str, size: int) -> Iterator[CatalogStore]:
    import psycopg

    name = f"lm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    store = open_catalog(url)
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def analyze(store: CatalogStore) -> None:
    """Planner statistics after a bulk load (PostgreSQL's autovacuum would gather them)."""
    pool = getattr(store, "pg", None)
    if pool is not None:
        with pool.write(lock=None) as conn:
            conn.script("ANALYZE")


def load(store: CatalogStore, layout: Layout, size: int) -> float:
    """Add ``size`` items in batches; returns items per second."""
    store.create_dataset(MosaicDataset(name=DATASET, crs="EPSG:3857"))
    start = time.perf_counter()
    for first in range(0, size, BATCH):
        store.add_items(DATASET, [layout.item(i) for i in range(first, min(first + BATCH, size))])
    return size / (time.perf_counter() - start)


def timed(calls: int, call: Callable[[int], object]) -> Latency:
    durations = []
    for i in range(calls):
        start = time.perf_counter()
        call(i)
        durations.append(time.perf_counter() - start)
    return Latency.of(durations)


def measure(store: CatalogStore, layout: Layout, size: int, calls: int) -> dict[str, Latency]:
    rng = random.Random(size)
    ext = layout.extent()

    def square(side: float) -> Extent:
        x = rng.uniform(ext.xmin, max(ext.xmin, ext.xmax - side))
        y = rng.uniform(ext.ymin, max(ext.ymin, ext.ymax - side))
        return Extent(x, y, x + side, y + side)

    def lookup(_: int) -> object:
        return store.find_items(DATASET, ItemQuery(extent=square(REQUEST_SIZE), limit=CANDIDATES))

    def window(_: int) -> object:
        t = T0 + rng.randrange(size)
        return store.find_items(DATASET, ItemQuery(time=(t, t + TIME_WINDOW_MS)))

    def bbox(_: int) -> object:
        return store.count_items(DATASET, ItemQuery(extent=square(BBOX_SIZE)))

    publisher = Publisher(store, ServiceRegistry(), RasterioProjector())
    publisher.publish(ServiceDefinition(name="Scale", dataset=DATASET))

    def refresh(_: int) -> object:
        return publisher.republish("", "Scale")

    return {
        "lookup": timed(calls, lookup),
        "time": timed(calls, window),
        "bbox": timed(calls, bbox),
        "refresh": timed(max(calls // 10, 5), refresh),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k and 10k items, fewer calls")
    parser.add_argument("--million", action="store_true", help="add a 1M-item catalog")
    parser.add_argument("--postgres", default=os.environ.get("LIVEMOSAIC_TEST_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000]
    if args.million:
        sizes.append(1_000_000)
    calls = 50 if args.quick else 300
    base = None if args.no_postgres else (args.postgres or DEFAULT_POSTGRES)
    print(machine_line())
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="lm_scale_"))
    try:
        for size in sizes:
            layout = Layout.of("grid", size)
            stores: list[tuple[str, Callable[[], object]]] = [
                ("sqlite", lambda s=size: sqlite_store(folder, s))
            ]
            if base is not None:
                stores.append(("postgresql", lambda s=size: postgres_store(base, s)))
            for name, opener in stores:
                with opener() as store:  # type: ignore[attr-defined]
                    rate = load(store, layout, size)
                    analyze(store)
                    got = measure(store, layout, size, calls)
                rows.append(
                    [
                        name,
                        f"{size:,}",
                        f"{rate:,.0f}",
                        *(f"{ms(got[k].p50)} / {ms(got[k].p99)}" for k in got),
                    ]
                )
                print(f"  {name} {size:,} done", file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    header = ["store", "items", "load items/s"]
    header += [f"{k} ms p50 / p99" for k in ("lookup", "time", "bbox", "refresh")]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
