"""livemosaic against MapServer and TiTiler on one mosaic of COGs: CPU per image, req/s,
latency and memory of each server, interleaved, with the in-process floor.

    bench/peers/run --quick        # 1 repetition, native + whole, DEM 256, c=1 and 4 only
    bench/peers/run                # 3 repetitions, 3 scales, c=1/4/16 (hours on 2 cores)
    bench/peers/run --soak         # 10 minutes of load, RSS every 10 s: is it flat?
    bench/peers/run --freshness    # file in the folder -> visible, per server, 1k/10k items
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import machine_line, parallel_capacity  # noqa: E402
from export_bench import export_request, prepare  # noqa: E402
from make_tiles import TileGrid, make_tiles  # noqa: E402

from livemosaic.adapters.raster.overview_tiles import CogTileWriter  # noqa: E402
from livemosaic.app import AppContext  # noqa: E402
from livemosaic.core.ingest import Ingestor  # noqa: E402
from livemosaic.core.models import Extent, ServiceDefinition  # noqa: E402
from livemosaic.core.overview_build import MosaicOverviews  # noqa: E402
from peers import config, report, servers  # noqa: E402
from peers.load import measure, sequential  # noqa: E402

SEED = 42
DEM_DATASET = "bench_dem"
MAX_ITEMS = 200
BOXES_PER_CASE = 24
PEERS = ("mapserver", "titiler")


def generate(data: Path, grid: TileGrid) -> dict[str, list[Path]]:
    """The imagery and the DEM (seeded; reused when already there)."""
    t0 = time.perf_counter()
    layers = {kind: make_tiles(data / kind, grid, SEED, kind=kind) for kind in ("rgb", "dem")}
    mb = sum(p.stat().st_size for files in layers.values() for p in files) / 1e6
    print(
        f"data: {grid.count} RGB + {grid.count} DEM COGs, {mb:.0f} MB, {time.perf_counter() - t0:.1f} s"
    )
    return layers


def catalog(work: Path, data: Path, grid: TileGrid, overviews: bool = False) -> AppContext:
    """livemosaic's catalog: Bench/Tiles (export_bench's) and Bench/Dem, each with its mosaic
    overviews when ``overviews`` (``dataset overviews build``)."""
    ctx = prepare(
        work, data / "rgb", grid, MAX_ITEMS, overviews=overviews, extra_folders=(data / "dem",)
    )
    ingestor = Ingestor(ctx.catalog, ctx.source, [data / "dem"])
    ingestor.create_dataset(DEM_DATASET, "EPSG:3857")
    added = ingestor.add_paths(DEM_DATASET, [data / "dem"]).added
    if overviews:
        built = MosaicOverviews(ctx.catalog, ctx.source, CogTileWriter(), [data / "dem"])
        built.configure(DEM_DATASET)
        done = built.build(DEM_DATASET)
        print(f"DEM overviews: {done.levels} levels, {done.written} tiles in {done.seconds:.1f} s")
    ctx.publisher.publish(
        ServiceDefinition(
            name=config.LM_SERVICES["dem"],
            folder=config.LM_FOLDER,
            dataset=DEM_DATASET,
            properties={"maxMosaicImageCount": str(MAX_ITEMS)},
        )
    )
    print(f"livemosaic catalog: Bench/Tiles and Bench/Dem ({added} DEM items)")
    return ctx


def mosaics(work: Path, layers: dict[str, list[Path]]) -> dict[str, Path]:
    """A MosaicJSON per layer for TiTiler (cogeo-mosaic, in the peers' virtualenv)."""
    import subprocess

    out = {}
    for kind, files in layers.items():
        listing = work / f"{kind}_files.txt"
        listing.write_text("".join(f"{f}\n" for f in files))
        out[kind] = work / f"{kind}.json"
        tool = Path(__file__).parent / "mosaicjson_tool.py"
        subprocess.run(
            [str(servers.peer_python()), str(tool), "create", str(out[kind]), str(listing)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def floors(
    ctx: AppContext, cases: list[config.Case], boxes: dict[config.Case, list[config.Box]]
) -> dict[str, float]:
    """The floor per case: livemosaic's exporter in this process, one thread, no HTTP (read +
    resample + mosaic + encode); median CPU ms of the case's bboxes after one warm-up."""
    out = {}
    for case in cases:
        snapshot = ctx.registry.get(config.LM_FOLDER, config.LM_SERVICES[case.layer])
        fmt = "tiff" if case.fmt == "tif" else case.fmt
        pixel_type = "F32" if case.fmt == "tif" else None
        times = []
        for i, box in enumerate(boxes[case][: 1 + min(8, len(boxes[case]))]):
            request = export_request(Extent(*box), case.size, fmt, "nearest", pixel_type)  # type: ignore[arg-type]
            t0 = time.thread_time()
            ctx.exporter.export(snapshot, request)
            if i:  # the first is the warm-up
                times.append(1000 * (time.thread_time() - t0))
        out[case.label] = float(np.median(times))
    return out


def pixels(content: bytes) -> np.ndarray:
    """An image's RGB pixels (alpha dropped)."""
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))


def compare(
    started: dict[str, servers.Server],
    case: config.Case,
    boxes: list[config.Box],
    mosaic_files: dict[str, Path],
) -> str:
    """Differing pixel fraction of livemosaic against each peer on a few bboxes of a case."""
    parts = []
    with httpx.Client(trust_env=False, timeout=120) as client:
        for peer in PEERS:
            fractions = []
            for box in boxes[:4]:
                images = []
                for name in (report.SUBJECT, peer):
                    url = started[name].base_url + config.request_path(
                        name, case, box, mosaic_files
                    )
                    images.append(pixels(client.get(url).content))
                fractions.append(report.differing_fraction(*images))
            parts.append(f"{peer} {100 * max(fractions):.3f} % (largest of {len(fractions)})")
    return f"differing pixels, {case.label}, livemosaic vs " + "; vs ".join(parts)


def warm_up(
    started: dict[str, servers.Server],
    cases: list[config.Case],
    boxes: dict[config.Case, list[config.Box]],
    mosaic_files: dict[str, Path],
) -> dict[tuple[str, str], float]:
    """Two requests per worker of each server and case, one after the other (each worker
    opens the case's files and fills its caches): checks each answer is an image and returns
    the last one's latency (seconds), from which the run lengths follow."""
    out = {}
    with httpx.Client(trust_env=False, timeout=300) as client:
        for case in cases:
            for name, server in started.items():
                for box in boxes[case][-2 * server.workers :]:
                    url = server.base_url + config.request_path(name, case, box, mosaic_files)
                    t0 = time.perf_counter()
                    r = client.get(url)
                    took = time.perf_counter() - t0
                    kind = r.headers.get("content-type", "")
                    if r.status_code != 200 or not kind.startswith("image/"):
                        raise RuntimeError(f"{name} {case.label}: {r.status_code} {r.text[:300]}")
                out[(name, case.label)] = took
    return out


def write_paths(
    work: Path,
    cases: list[config.Case],
    boxes: dict[config.Case, list[config.Box]],
    mosaic_files: dict[str, Path],
) -> dict[tuple[str, str], Path]:
    """One file of request paths per (server, case), for wrk's script."""
    out = {}
    for server in config.SERVERS:
        for case in cases:
            path = work / "paths" / f"{server}-{case.label.replace(' ', '_')}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [config.request_path(server, case, b, mosaic_files) for b in boxes[case]]
            path.write_text("\n".join(lines) + "\n")
            out[(server, case.label)] = path
    return out


def run(args: argparse.Namespace) -> int:
    print("peers suite: livemosaic vs MapServer vs TiTiler, same COGs, same bboxes, nearest")
    print(machine_line())
    capacity = [parallel_capacity()]
    grid = TileGrid(10, 10, 1024, overlap=0)
    data = args.data_dir
    work = Path(tempfile.mkdtemp(prefix="livemosaic-peers-"))
    started: dict[str, servers.Server] = {}
    ctx: AppContext | None = None
    try:
        layers = generate(data, grid)
        ctx = catalog(work, data, grid, args.overviews)
        extent = grid.extent()
        mosaic_files = mosaics(work, layers)
        scales = config.QUICK_SCALES if args.quick else config.SCALES
        dem_sizes = config.SIZES[:1] if args.quick else config.SIZES
        cases = config.cases(scales, config.SIZES, config.FORMATS, dem_sizes)
        boxes = {
            c: config.bboxes(c.scale, c.size, extent, grid.pixel, BOXES_PER_CASE, args.seed)
            for c in cases
        }
        floor = floors(ctx, cases, boxes)
        ctx.close()
        ctx = None
        paths = write_paths(work, cases, boxes, mosaic_files)
        script = work / "paths.lua"
        script.write_text(config.WRK_SCRIPT)
        all_servers: list[servers.Server] = [
            servers.LiveMosaic(
                work / "livemosaic",
                work / "data",
                [data / "rgb", data / "dem"],
                MAX_ITEMS,
                args.workers,
            ),
            servers.MapServer(work / "mapserver", extent, layers, args.workers),
            servers.TiTiler(work / "titiler", mosaic_files, workers=args.workers),
        ]
        probe = cases[0]
        for server in all_servers:
            t0 = time.perf_counter()
            server.start(config.request_path(server.name, probe, boxes[probe][0], mosaic_files))
            started[server.name] = server
            print(f"server: {server.label} ready in {time.perf_counter() - t0:.1f} s")
        for case in cases:
            if case.scale == "native" and case.fmt == "png":
                print(compare(started, case, boxes[case], mosaic_files))
        if args.soak:
            return soak(started, cases, paths, script, work, args)
        runs: list[report.Run] = []
        order = list(config.SERVERS)
        latency = warm_up(started, cases, boxes, mosaic_files)
        levels = (1, *args.connections)
        total = args.reps * len(cases) * len(levels) * len(order)
        done = 0
        t_start = time.perf_counter()
        for rep in range(args.reps):
            for index, case in enumerate(cases):
                turn = order[(rep + index) % 3 :] + order[: (rep + index) % 3]
                for conns in levels:
                    for name in turn:
                        s = started[name]
                        listing = paths[(name, case.label)]
                        if conns == 1:
                            lines = listing.read_text().splitlines()
                            run_ = sequential(
                                name, s.base_url, s.roots, case.label, lines, args.sequential, rep
                            )
                        else:
                            seconds = config.run_seconds(
                                args.seconds, latency[(name, case.label)], conns, args.max_seconds
                            )
                            run_ = measure(
                                name, s.base_url, s.roots, case.label, listing, script, conns,
                                seconds, rep,
                            )  # fmt: skip
                        runs.append(run_)
                        done += 1
                print(
                    f"  rep {rep + 1}/{args.reps} {case.label}: {done}/{total} runs, "
                    f"{time.perf_counter() - t_start:.0f} s",
                    flush=True,
                )
        capacity.append(parallel_capacity())
        labels = {s.name: s.label for s in all_servers}
        summaries = report.summarise(runs)
        print(
            "\n## Every server (medians of the repetitions; CPU: the server's whole process tree)"
        )
        print(report.detail_table(summaries, labels))
        print("\n## livemosaic / peer and / floor (CPU, RSS < 1 and req/s > 1 favour livemosaic)")
        print(report.ratio_table(summaries, floor, PEERS))
        print(
            "\nfloor: livemosaic's exporter in-process, 1 thread, no HTTP (CPU ms, median). "
            "parallel capacity (2.00 = two free cores): " + " / ".join(f"{c:.2f}" for c in capacity)
        )
        print(machine_line())
        return 0
    finally:
        for server in started.values():
            server.stop()
        if ctx is not None:
            ctx.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}")


def soak(
    started: dict[str, servers.Server],
    cases: list[config.Case],
    paths: dict[tuple[str, str], Path],
    script: Path,
    work: Path,
    args: argparse.Namespace,
) -> int:
    """``args.soak_seconds`` of mixed requests (every case) at c=16 per server, RSS every 10 s."""
    from peers.load import wrk

    flat_all = True
    for name in args.soak_servers.split(","):
        server = started[name]
        mixed = work / f"soak-{name}.txt"
        lines: list[str] = []
        for case in cases:
            lines += paths[(name, case.label)].read_text().splitlines()
        mixed.write_text(
            "\n".join(lines[i] for i in np.random.default_rng(1).permutation(len(lines))) + "\n"
        )
        figures, cpu, peak, samples = wrk(
            server.base_url, mixed, script, 16, args.soak_seconds, server.roots, 10.0
        )
        flat = report.is_flat(samples)
        flat_all &= flat
        mb = " ".join(f"{s / 2**20:.0f}" for s in samples)
        print(
            f"\n[soak] {server.label}: {figures['requests']} requests in {args.soak_seconds:.0f} s, "
            f"{figures['errors'] + figures['status_errors']} errors, peak RSS {peak / 2**20:.0f} MB"
        )
        print(f"  RSS MB every 10 s: {mb}")
        print(f"  flat: {'yes' if flat else 'NO'} (last quarter within 5 % of the second quarter)")
    return 0 if flat_all else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repetition, native + whole, DEM 256 only, c=1 and 4, 2-20 s runs",
    )
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="longest wrk run (slow servers get longer runs, to finish enough requests)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "livemosaic-peers-data",
        help="where the generated COGs are kept (reused by the next run)",
    )
    parser.add_argument("--seed", type=int, default=11, help="seed of the bbox positions")
    parser.add_argument(
        "--sequential", type=int, default=8, help="requests one at a time (c=1) per case"
    )
    parser.add_argument(
        "--workers", type=int, default=servers.WORKERS, help="processes of each server"
    )
    parser.add_argument(
        "--connections",
        type=lambda text: tuple(int(x) for x in text.split(",")),
        default=config.CONCURRENCY,
        help="wrk connections, comma-separated (default 4,16)",
    )
    parser.add_argument("--soak", action="store_true", help="a 10-minute soak instead")
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--soak-servers", default="livemosaic", help="comma-separated")
    parser.add_argument(
        "--freshness", action="store_true", help="the freshness measurement instead"
    )
    parser.add_argument("--items", default="1000,10000", help="freshness: catalog sizes")
    parser.add_argument("--with-100k", action="store_true", help="freshness: also 100,000 items")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--overviews",
        action="store_true",
        help="build livemosaic's mosaic overviews of the imagery and the DEM first (dataset "
        "overviews build), as a user sets up a mosaic drawn at small scales",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.seconds, args.max_seconds, args.sequential = 1, 2.0, 20.0, 6
        args.connections = (4,)
        args.items = "1000"
    if args.freshness:
        from peers.freshness import run as run_freshness

        sizes = [int(x) for x in args.items.split(",")] + ([100_000] if args.with_100k else [])
        return run_freshness(sizes, args)
    return run(args)
