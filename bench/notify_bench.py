"""Notification latency: from a refresh's snapshot swap to the last of N WebSocket clients.

A server runs in a subprocess on 127.0.0.1 at a free port (this script with ``--serve``): a
catalog with one small GeoTIFF, ``Bench/Notify`` published with ``hasLiveData``, the
notification WebSocket and a bench-only ``POST {root}/bench/step`` route. Each step adds one more
tile (Ingestor, so the extent really changes) and calls ``Publisher.republish`` — what the
Refresh Service job does before it is marked succeeded. The server notes the wall-clock time
of the swap (a registry listener registered before the hub's) and the time the republish
returned (job success).

This process connects N clients (asyncio, ``websockets``; connections opened at most 50 at a
time), subscribes each to ``Bench/Notify`` and records when each receives the step's
``serviceRefreshed`` message. For each of ``--swaps`` steps it reports the time from the swap
(and from job success) to the first and the last client notified, then p50/p99/max over the
steps. Both processes read the same clock (``time.time()`` on one machine). Only 127.0.0.1
is contacted; the temporary folder and the server are removed.

    .venv/bin/python bench/notify_bench.py                   # 500 clients, 20 swaps
    .venv/bin/python bench/notify_bench.py --clients 100 --swaps 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import rasterio
from common import Latency, free_port, machine_line, ms, table
from rasterio.transform import from_origin

SERVICE = "Bench/Notify.ImageServer"
TILE = 64  # pixels per side of each generated tile
PIXEL = 100.0  # metres
CONNECT_AT_ONCE = 50


def write_tiles(folder: Path, count: int) -> list[Path]:
    """``count`` small EPSG:3857 GeoTIFFs in a row, each one extending the mosaic eastwards."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        path = folder / f"tile_{i:03d}.tif"
        data = rng.integers(1, 255, size=(1, TILE, TILE), dtype=np.uint8)
        transform = from_origin(1_000_000.0 + i * TILE * PIXEL, 6_000_000.0, PIXEL, PIXEL)
        profile = {
            "driver": "GTiff",
            "width": TILE,
            "height": TILE,
            "count": 1,
            "dtype": "uint8",
            "crs": "EPSG:3857",
            "transform": transform,
            "nodata": 0,
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
        paths.append(path)
    return paths


# -- server side (--serve) ------------------------------------------------------------------------


def serve(data_dir: Path, tiles: Path, port: int) -> None:
    """Run the bench server until terminated."""
    import uvicorn
    from fastapi import APIRouter

    from livemosaic.app import build_context, create_app
    from livemosaic.core.ingest import Ingestor
    from livemosaic.core.models import ServiceDefinition
    from livemosaic.rest.notify_hub import NotificationHub
    from livemosaic.settings import Settings

    settings = Settings(data_dir=data_dir, data_folders=[tiles], root="arcgis", port=port)
    ctx = build_context(settings)
    ingestor = Ingestor(ctx.catalog, ctx.source, [tiles])
    files = sorted(tiles.glob("tile_*.tif"))
    ingestor.create_dataset("bench_notify")
    ingestor.add_paths("bench_notify", files[:1])
    ctx.publisher.publish(
        ServiceDefinition(
            "Notify", "bench_notify", folder="Bench", properties={"hasLiveData": "true"}
        )
    )
    swapped: dict[int, float] = {}
    ctx.registry.subscribe(lambda _old, new: swapped.__setitem__(new.version, time.time()))
    hub = NotificationHub(ctx.registry, queue_size=32, heartbeat_seconds=15.0)
    lock = threading.Lock()
    step = {"next": 1}

    def do_step() -> dict[str, float]:
        with lock:
            index = step["next"]
            step["next"] += 1
            ingestor.add_paths("bench_notify", [files[index]])
            _old, new = ctx.publisher.republish("Bench", "Notify")
            done = time.time()
            return {"version": new.version, "swapped": swapped[new.version], "done": done}

    bench = APIRouter()

    @bench.post("/bench/step")
    async def bench_step() -> dict[str, float]:
        return await asyncio.to_thread(do_step)

    app = create_app(settings, ctx, extra_routers=(bench,))  # mounts the notification route
    app.state.notify_hub = hub
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio", backlog=4096
    )


# -- client side --------------------------------------------------------------------------------


@dataclass
class Clients:
    """Arrival times of serviceRefreshed messages per version, over all clients."""

    arrivals: dict[int, list[float]] = field(default_factory=dict)
    subscribed: int = 0
    errors: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def client(url: str, clients: Clients, gate: asyncio.Semaphore, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with gate:
        ws = await connect(url, proxy=None, compression=None, open_timeout=60, ping_interval=None)
    try:
        await ws.send(json.dumps({"op": "subscribe", "services": [SERVICE]}))
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            event = message.get("event")
            if event == "serviceRefreshed":
                clients.arrivals.setdefault(message["generation"], []).append(now)
                clients.changed.set()
            elif event == "subscribed":
                clients.subscribed += 1
                clients.changed.set()
            elif event in ("error", "lagging"):
                clients.errors.append(str(message))
            if stop.is_set():
                break
    finally:
        await ws.close()


async def wait_for(clients: Clients, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        clients.changed.clear()
        try:
            await asyncio.wait_for(clients.changed.wait(), remaining)
        except TimeoutError:
            return predicate()
    return True


async def run(base: str, count: int, swaps: int) -> list[dict[str, float]]:
    url = base.replace("http://", "ws://") + "/arcgis/livemosaic/ws"
    clients = Clients()
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    stop = asyncio.Event()
    started = time.perf_counter()
    tasks = [asyncio.create_task(client(url, clients, gate, stop)) for _ in range(count)]
    if not await wait_for(clients, lambda: clients.subscribed >= count, 120):
        raise RuntimeError(f"only {clients.subscribed} of {count} clients subscribed")
    print(f"{count} clients connected and subscribed in {time.perf_counter() - started:.1f} s")
    results = []
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=60) as http:
        for _ in range(swaps):
            r = await http.post("/arcgis/bench/step")  # extra routers live under /{root}
            r.raise_for_status()
            step = r.json()
            version = int(step["version"])
            if not await wait_for(
                clients, lambda v=version: len(clients.arrivals.get(v, [])) >= count, 30
            ):
                got = len(clients.arrivals.get(version, []))
                raise RuntimeError(f"version {version}: only {got} of {count} clients notified")
            times = clients.arrivals[version]
            results.append(
                {
                    "first": min(times) - step["swapped"],
                    "median": float(np.median(times)) - step["swapped"],
                    "last": max(times) - step["swapped"],
                    "last_after_done": max(times) - step["done"],
                    "job": step["done"] - step["swapped"],
                }
            )
            await asyncio.sleep(0.2)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if clients.errors:
        print(f"server errors/lag notices: {len(clients.errors)}, e.g. {clients.errors[0]}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tiles", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.data_dir, args.tiles, args.port)
        return

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.clients + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="livemosaic-notify-bench-") as tmp:
        work = Path(tmp)
        write_tiles(work / "tiles", args.swaps + 1)
        port = free_port()
        log_path = work / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", "--data-dir", str(work / "data"),
                 "--tiles", str(work / "tiles"), "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            ready(base, proc, log_path)
            results = asyncio.run(run(base, args.clients, args.swaps))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    report(results, args.clients)


def ready(base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(trust_env=False, timeout=5) as http:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = http.get(base + "/arcgis/rest/services/Bench/Notify/ImageServer?f=json")
                if r.status_code == 200 and b'"error"' not in r.content[:200]:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError("the bench server did not start:\n" + log_path.read_text()[-3000:])


def report(results: list[dict[str, float]], count: int) -> None:
    rows = []
    for key, label in (
        ("first", "swap -> first client"),
        ("median", "swap -> median client"),
        ("last", "swap -> last client"),
        ("job", "swap -> job success (republish returned)"),
        ("last_after_done", "job success -> last client"),
    ):
        lat = Latency.of([r[key] for r in results])
        rows.append([label, ms(lat.p50), ms(lat.p99), ms(lat.max)])
    print(f"\n{len(results)} swaps, {count} WebSocket clients each (milliseconds)")
    print(table(["", "p50", "p99", "max"], rows))


if __name__ == "__main__":
    main()
