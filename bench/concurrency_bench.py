"""Workers vs read threads, and uvloop/httptools vs asyncio/h11, measured in one run.

Uses the tiles, catalog and service of ``export_bench.py`` (``prepare``; mosaic overviews
built, as a deployment would) and starts several ``livemosaic serve`` processes on 127.0.0.1
over the same catalog, all running for the whole run:

* **layout**: 1 worker x 4 read threads (the baseline) against 2 workers x 2 threads and
  1 worker x 2 threads (``--layouts``), at concurrency 1/4/8, for native, mid and whole-extent
  512x512 PNG and JPEG;
* **loop**: 1 worker x 4 threads with ``--loop asyncio --http h11`` against ``--loop uvloop
  --http httptools``, for small requests at concurrency 16: a 256x256 native PNG and the
  service info (``?f=json``).

Every cell (scale, format, concurrency) runs each server in turn, in ``--rounds`` slices of
``--seconds`` whose order alternates, so a change in machine load hits them alike. Per cell
and server it prints req/s, p50/p99 latency, server CPU ms per request (user + system of
every process of the server, from /proc) and, per server, the peak RSS (the sum of the
processes' high-water marks: an upper bound, shared pages count once per process); then the
ratios against the baseline measured in the same run.

    .venv/bin/python bench/concurrency_bench.py --tiles-dir /tmp/tiles   # about 7 min
    .venv/bin/python bench/concurrency_bench.py --quick                  # under 2 min
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import Latency, Phase, ServerProcess, drive, machine_line, ms, parallel_capacity, table
from export_bench import FOLDER, SERVICE, SIZE, make_scales, prepare
from make_tiles import TileGrid

from livemosaic.core.models import Extent

SERVICE_PATH = f"/arcgis/rest/services/{FOLDER}/{SERVICE}/ImageServer"
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff"}
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Layout:
    """One server configuration."""

    name: str
    workers: int
    threads: int
    loop: str = "auto"
    http: str = "auto"


@dataclass(frozen=True, slots=True)
class Cell:
    """One kind of request at one concurrency."""

    label: str
    fmt: str  # png, jpg, or json (service info)
    size: int
    boxes: tuple[Extent, ...]
    clients: int


@dataclass
class Tally:
    """What one server did for one cell."""

    phase: Phase = field(default_factory=Phase)
    cpu: float = 0.0


def server_pid(server: ServerProcess) -> int:
    """The process id of a started server (0 when it is not running)."""
    proc = server.proc
    return proc.pid if proc is not None else 0


def tree_pids(root: int) -> list[int]:
    """``root`` and every process below it (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a server."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def tree_peak_rss(root: int) -> int:
    """Sum of the high-water RSS (VmHWM, bytes) of a server's processes."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class Clients:
    """One keep-alive httpx client per thread, for one server."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url + SERVICE_PATH
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        c: httpx.Client | None = getattr(self._local, "client", None)
        if c is None:
            c = httpx.Client(trust_env=False, timeout=120.0)
            self._local.client = c
            with self._lock:
                self._all.append(c)
        return c

    def get(self, cell: Cell, i: int) -> tuple[int, bytes]:
        """Request ``i`` of a cell (the boxes are taken in turn)."""
        if cell.fmt == "json":
            r = self._client().get(self.base, params={"f": "json"})
            if r.status_code != 200 or not r.content.startswith(b"{") or b'"error"' in r.content:
                raise ValueError(f"HTTP {r.status_code} {r.content[:200]!r}")
            return -1, r.content
        box = cell.boxes[i % len(cell.boxes)]
        params = {
            "bbox": f"{box.xmin!r},{box.ymin!r},{box.xmax!r},{box.ymax!r}",
            "bboxSR": "3857",
            "imageSR": "3857",
            "size": f"{cell.size},{cell.size}",
            "format": cell.fmt,
            "f": "image",
        }
        r = self._client().get(self.base + "/exportImage", params=params)
        if r.status_code != 200 or not r.content.startswith(MAGIC[cell.fmt]):
            raise ValueError(f"HTTP {r.status_code} {r.content[:200]!r}")
        return -1, r.content

    def close(self) -> None:
        """Close every client."""
        for c in self._all:
            c.close()


def start_servers(
    layouts: list[Layout], work: Path, tiles_dir: Path, max_items: int
) -> list[ServerProcess]:
    """One running ``livemosaic serve`` per layout (stopped by the caller)."""
    servers: list[ServerProcess] = []
    for layout in layouts:
        server = ServerProcess(
            ["--data-dir", str(work / "data"), "--data-folder", str(tiles_dir)],
            {
                "LIVEMOSAIC_MAX_MOSAIC_IMAGE_COUNT": str(max_items),
                "LIVEMOSAIC_READ_THREADS": str(layout.threads),
            },
            cwd=work,
            log_path=work / f"server-{len(servers)}.log",
        )
        server.command += ["--workers", str(layout.workers)]
        server.command += ["--loop", layout.loop, "--http", layout.http]
        servers.append(server)
        server.start(f"{SERVICE_PATH}?f=json")
        print(f"server {layout.name}: {server.base_url}")
    return servers


def measure(
    cells: list[Cell],
    layouts: list[Layout],
    servers: list[ServerProcess],
    pool: ThreadPoolExecutor,
    args: argparse.Namespace,
) -> dict[tuple[str, str], Tally]:
    """Every cell on every server, in alternating order, ``args.rounds`` slices each."""
    clients = [Clients(s.base_url) for s in servers]
    out: dict[tuple[str, str], Tally] = {}
    try:
        for cell in cells:
            for c in clients:  # warm-up: GDAL caches and handles, connections
                drive(pool, min(cell.clients, 4), range(4), 30.0, _call(c, cell), Phase())
            cursor = [0] * len(servers)
            for rnd in range(args.rounds):
                order = list(range(len(servers)))
                if rnd % 2:
                    order.reverse()
                for k in order:
                    pid = server_pid(servers[k])
                    tally = out.setdefault((cell.label, layouts[k].name), Tally())
                    cpu0 = tree_cpu(pid)
                    todo = range(cursor[k], cursor[k] + 100_000)
                    cursor[k] += drive(
                        pool, cell.clients, todo, args.seconds, _call(clients[k], cell), tally.phase
                    )
                    tally.cpu += tree_cpu(pid) - cpu0
            print(f"  measured {cell.label}", flush=True)
    finally:
        for c in clients:
            c.close()
    return out


def _call(clients: Clients, cell: Cell) -> Callable[[int], tuple[int, bytes]]:
    return lambda i: clients.get(cell, i)


def report(
    title: str,
    cells: list[Cell],
    layouts: list[Layout],
    results: dict[tuple[str, str], Tally],
) -> None:
    """A table per group of cells and the ratios against the first layout."""
    print(f"\n{title}")
    rows = []
    base = layouts[0].name
    for cell in cells:
        b = results[(cell.label, base)]
        b_lat = Latency.of(b.phase.durations)
        b_cpu = b.cpu / max(len(b.phase.durations), 1)
        for layout in layouts:
            t = results[(cell.label, layout.name)]
            n = len(t.phase.durations)
            lat = Latency.of(t.phase.durations)
            cpu = t.cpu / max(n, 1)
            ratio = "" if layout.name == base else (
                f"{t.phase.rate / b.phase.rate:.2f} / {lat.p50 / b_lat.p50:.2f} / "
                f"{lat.p99 / b_lat.p99:.2f} / {cpu / b_cpu:.2f}"
            )  # fmt: skip
            rows.append(
                [
                    cell.label,
                    layout.name,
                    str(n),
                    f"{t.phase.rate:.2f}",
                    ms(lat.p50),
                    ms(lat.p99),
                    f"{cpu * 1000:.1f}",
                    str(len(t.phase.errors)),
                    ratio,
                ]
            )
    print(
        table(
            [
                "request",
                "server",
                "n",
                "req/s",
                "p50 ms",
                "p99 ms",
                "CPU ms/req",
                "err",
                f"vs {base}: req/s / p50 / p99 / CPU",
            ],
            rows,
        )  # fmt: skip
    )


def build_cells(scales: dict[str, tuple[Extent, ...]], args: argparse.Namespace) -> list[Cell]:
    """The layout cells: scale x format x concurrency."""
    cells = []
    for name in args.scales:
        for fmt in args.formats:
            for c in args.concurrency:
                cells.append(Cell(f"{name} {fmt} {SIZE}² c={c}", fmt, SIZE, scales[name], c))
    return cells


def loop_cells(native: tuple[Extent, ...], clients: int) -> list[Cell]:
    """Small requests: a 256x256 native PNG (the lower-left quarter of a native 512 box)
    and the service info."""
    quarter = tuple(
        Extent(b.xmin, b.ymin, b.xmin + b.width / 2, b.ymin + b.height / 2) for b in native
    )
    return [
        Cell(f"native png 256² c={clients}", "png", 256, quarter, clients),
        Cell(f"service info c={clients}", "json", 0, (), clients),
    ]


def run(args: argparse.Namespace, grid: TileGrid) -> int:
    """Prepare, start the servers, measure and print."""
    print("concurrency_bench: workers x read threads, and the event loop, over HTTP")
    print(machine_line())
    capacity = [parallel_capacity()]
    work = Path(tempfile.mkdtemp(prefix="livemosaic-concurrency-bench-"))
    tiles_dir = args.tiles_dir or work / "tiles"
    servers: list[ServerProcess] = []
    errors: list[str] = []
    try:
        ctx = prepare(work, tiles_dir, grid, args.max_items, overviews=not args.no_overviews)
        try:
            extent = ctx.registry.get(FOLDER, SERVICE).summary.extent
        finally:
            ctx.close()
        assert extent is not None
        scales = {s.name: s.boxes for s in make_scales(extent, grid.pixel, 40, args.seed)}
        layouts = [Layout(n, w, t) for n, w, t in LAYOUTS if n in args.layouts]
        loops = [Layout(n, 1, 4, loop, http) for n, loop, http in LOOPS]
        everything = layouts + (loops if args.loops else [])
        servers = start_servers(everything, work, tiles_dir, args.max_items)
        pool = ThreadPoolExecutor(max(*args.concurrency, args.loop_clients))
        with pool:
            cells = build_cells(scales, args)
            results = measure(cells, layouts, servers[: len(layouts)], pool, args)
            small = loop_cells(scales["native"], args.loop_clients) if args.loops else []
            loop_results = measure(small, loops, servers[len(layouts) :], pool, args)
        capacity.append(parallel_capacity())
        report("[layout] 512x512 exportImage", cells, layouts, results)
        if args.loops:
            report("[loop] small requests, 1 worker x 4 threads", small, loops, loop_results)
        print("\npeak RSS per server (sum of its processes' VmHWM):")
        for layout, server in zip(everything, servers, strict=True):
            pid = server_pid(server)
            print(f"  {layout.name:<24} {tree_peak_rss(pid) / 2**20:8.0f} MiB")
        print(
            "\nCPU available to this run: 2 threads got "
            + " / ".join(f"{c:.2f}x" for c in capacity)
            + " one thread's work done (start / end; 2.00 = both cores free), "
            f"load average now {', '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
        for tallies in (results, loop_results):
            errors += [e for t in tallies.values() for e in t.phase.errors]
        for e in errors[:5]:
            print("error:", e)
        return 1 if errors else 0
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


LAYOUTS = (("1 worker x 4 threads", 1, 4), ("2 workers x 2 threads", 2, 2),
           ("1 worker x 2 threads", 1, 2), ("2 workers x 1 thread", 2, 1))  # fmt: skip
LOOPS = (("asyncio + h11", "asyncio", "h11"), ("uvloop + httptools", "uvloop", "httptools"))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cols", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--tile-size", type=int, default=1024, help="pixels per tile side")
    parser.add_argument("--tiles-dir", type=Path, help="keep/reuse the generated tiles here")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per slice")
    parser.add_argument("--rounds", type=int, default=2, help="slices per cell and server")
    parser.add_argument("--max-items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-overviews", action="store_true", help="skip mosaic overviews")
    parser.add_argument(
        "--layouts",
        type=lambda s: [n.strip() for n in s.split(",")],
        default=[n for n, _, _ in LAYOUTS[:3]],
        help="comma-separated layout names (the first is the baseline); "
        + "; ".join(n for n, _, _ in LAYOUTS),
    )
    parser.add_argument(
        "--concurrency", type=lambda s: [int(v) for v in s.split(",")], default=[1, 4, 8]
    )
    parser.add_argument("--scales", type=lambda s: s.split(","), default=["native", "mid", "whole"])
    parser.add_argument("--formats", type=lambda s: s.split(","), default=["png", "jpg"])
    parser.add_argument("--loop-clients", type=int, default=16)
    parser.add_argument("--no-loops", dest="loops", action="store_false")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="6x6 tiles of 512 px, 2 layouts, c=1/8, 1 s slices (checks the script)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.cols, args.rows, args.tile_size = 6, 6, 512
        args.layouts = args.layouts[:2]
        args.concurrency, args.seconds, args.rounds = [1, 8], 1.0, 2
    grid = TileGrid(args.cols, args.rows, args.tile_size, overlap=max(args.tile_size // 32, 1))
    return run(args, grid)


if __name__ == "__main__":
    sys.exit(main())
