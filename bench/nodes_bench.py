"""exportImage throughput with one and with two server nodes over one PostgreSQL catalog.

A new PostgreSQL database holds the catalog of ``make_tiles``' COG mosaic; two ``livemosaic
serve`` processes (one worker each, as two machines would run them) serve it. The clients
spread their requests round-robin over the nodes of a configuration — one node, then both —
for the whole extent and native scale, 512² PNG, the configurations taking turns over the
repetitions. Printed per configuration and scale: requests per second, p50/p99 latency and the
nodes' CPU per request, with the ratio two nodes / one node.

On a machine with fewer cores than nodes × read threads the nodes share the same CPUs, so a
second node cannot add throughput there (it shows what the shared catalog costs instead); on
a site, run it with the nodes on their own machines (``--nodes-url`` lists running nodes) to
measure how throughput grows with nodes.

    .venv/bin/python bench/nodes_bench.py --quick
    .venv/bin/python bench/nodes_bench.py --seconds 30 --clients 16
    .venv/bin/python bench/nodes_bench.py --nodes-url http://node1:8080,http://node2:8080
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from common import Latency, ServerProcess, machine_line, ms, table
from export_bench import DATASET, FOLDER, SERVICE, SIZE, make_scales
from make_tiles import TileGrid, make_tiles
from peers.procs import cpu_seconds, tree

from livemosaic.app import build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import Extent, ServiceDefinition
from livemosaic.settings import Settings

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SEED = 42
SVC = f"/arcgis/rest/services/{FOLDER}/{SERVICE}/ImageServer"


def create_database(base: str) -> tuple[str, str]:
    """A new database on the server of ``base`` (with the catalog's extensions): (url, name)."""
    import psycopg

    name = f"lm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    head, _, _ = base.partition("?")
    url = head.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        for ext in ("citext", "btree_gist"):
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}".encode())
    return url, name


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def load(
    bases: list[str], boxes: tuple[Extent, ...], clients: int, seconds: float
) -> tuple[list[float], int, float]:
    """``clients`` threads sending exportImage round-robin over ``bases`` for ``seconds``:
    (latencies, errors, wall seconds)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    turn = itertools.count()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(trust_env=False, timeout=120) as http:
            while time.monotonic() < stop:
                i = next(turn)
                box = boxes[i % len(boxes)]
                params = {
                    "bbox": f"{box.xmin},{box.ymin},{box.xmax},{box.ymax}",
                    "bboxSR": "3857",
                    "size": f"{SIZE},{SIZE}",
                    "format": "png",
                    "f": "image",
                }
                t0 = time.perf_counter()
                r = http.get(f"{bases[i % len(bases)]}{SVC}/exportImage", params=params)
                took = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200 and r.content.startswith(b"\x89PNG"):
                        latencies.append(took)
                    else:
                        errors[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("LIVEMOSAIC_TEST_POSTGRES_URL"))
    parser.add_argument("--seconds", type=float, default=15.0, help="per configuration and scale")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 1 repetition")
    parser.add_argument("--tiles-dir", type=Path, default=None)
    parser.add_argument("--nodes-url", default="", help="comma-separated running nodes")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.reps = 5.0, 1
    base = args.postgres or DEFAULT_POSTGRES
    print(machine_line())
    grid = TileGrid(6, 6, 512)
    scales = {s.name: s for s in make_scales(Extent(*grid.extent()), grid.pixel, 8, SEED)}
    work = Path(tempfile.mkdtemp(prefix="livemosaic-nodes-"))
    tiles = args.tiles_dir or work / "tiles"
    nodes: list[ServerProcess] = []
    url, name = create_database(base)
    try:
        if args.nodes_url:
            bases = args.nodes_url.split(",")
        else:
            paths = make_tiles(tiles, grid, SEED)
            settings = Settings(
                _env_file=None, data_dir=work / "data", data_folders=[tiles], catalog_url=url
            )
            ctx = build_context(settings)
            Ingestor(ctx.catalog, ctx.source, [tiles]).create_dataset(DATASET, "EPSG:3857")
            added = Ingestor(ctx.catalog, ctx.source, [tiles]).add_paths(DATASET, paths).added
            ctx.publisher.publish(ServiceDefinition(name=SERVICE, folder=FOLDER, dataset=DATASET))
            ctx.close()
            print(f"catalog: {added} COGs in PostgreSQL database {name}")
            for i in range(2):
                node = ServerProcess(
                    ["--data-dir", str(work / "data"), "--data-folder", str(tiles)],
                    {"LIVEMOSAIC_CATALOG_URL": url},
                    cwd=work,
                    log_path=work / f"node{i}.log",
                )
                node.start(f"{SVC}?f=json", timeout=120)
                nodes.append(node)
            bases = [n.base_url for n in nodes]
        rows = []
        results: dict[tuple[int, str], list[tuple[list[float], int, float, float]]] = {}
        for rep in range(args.reps):
            order = [1, 2] if rep % 2 == 0 else [2, 1]
            for count in order:
                for scale in ("native", "whole"):
                    pids = tree(n.proc.pid for n in nodes[:count] if n.proc is not None)
                    cpu0 = cpu_seconds(pids)
                    lat, errors, wall = load(
                        bases[:count], scales[scale].boxes, args.clients, args.seconds
                    )
                    cpu = cpu_seconds(tree(n.proc.pid for n in nodes[:count] if n.proc)) - cpu0
                    results.setdefault((count, scale), []).append((lat, errors, wall, cpu))
        for scale in ("native", "whole"):
            rates = {}
            for count in (1, 2):
                runs = results[(count, scale)]
                lat = [x for r in runs for x in r[0]]
                done = len(lat)
                wall = sum(r[2] for r in runs)
                cpu = sum(r[3] for r in runs)
                rates[count] = done / wall if wall else float("nan")
                summary = Latency.of(lat)
                rows.append([
                    f"{scale}, {count} node{'s' if count > 1 else ''}",
                    f"{rates[count]:.1f}",
                    ms(summary.p50),
                    ms(summary.p99),
                    ms(cpu / done) if nodes and done else "-",
                    str(sum(r[1] for r in runs)),
                ])  # fmt: skip
            rows.append([f"{scale}: 2 nodes / 1 node", f"{rates[2] / rates[1]:.2f}×", "", "", "",
                         ""])  # fmt: skip
        print(
            f"{SIZE}² PNG, {args.clients} clients round-robin, {args.seconds:g} s × {args.reps} "
            "per configuration and scale"
        )
        print(table(["configuration", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "errors"], rows))
        return 0
    finally:
        for node in nodes:
            node.stop()
        drop_database(base, name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
