"""Freshness: from a complete file in the folder to the server drawing it, at 1k/10k items.

For each catalog size, ``n`` tiny files (16×16 px, EPSG:3857) are written; then, for each
server, ``ARRIVALS`` new files arrive one at a time the way producers are told to deliver
(written as ``name.tif.part`` in the folder, then renamed), and the time from the rename until
the server draws the file is measured, with what each server needs in between:

- **livemosaic** watches the folder itself (``serve --watch``, default watch settings, as in
  ``bench/freshness_bench.py``, whose client is reused): visible = exportImage draws the file
  and the service info's extent covers it.
- **MapServer** draws what its GDAL tile index lists: the index is regenerated with
  ``gdaltindex`` over every file (what a watcher script or a cron job would run).
- **TiTiler** draws what its MosaicJSON lists: cogeo-mosaic's ``update`` adds the file (its
  footprint, then the whole JSON rewritten). TiTiler caches a mosaic for 5 minutes by
  default; the cache is disabled here (``COGEO_MOSAIC_CACHE_DISABLE``), or nothing new would
  show for up to 300 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import ServerProcess, machine_line, table  # noqa: E402
from freshness_bench import Client  # noqa: E402

from livemosaic.app import build_context  # noqa: E402
from livemosaic.core.ingest import Ingestor  # noqa: E402
from livemosaic.core.models import ServiceDefinition  # noqa: E402
from livemosaic.settings import Settings  # noqa: E402
from peers import config, servers  # noqa: E402
from peers.load import settle  # noqa: E402

TINY = 16  # pixels per side
PIXEL = 10.0
ORIGIN = (2_000_000.0, 6_000_000.0)
COLUMNS = 1000
ARRIVALS = 3
PATIENCE = 60.0  # seconds to wait for one file
POLL = 0.02
SERVICE = "Fresh/Items"
RULES = """
[[watch]]
folder = "{folder}"
dataset = "fresh"
service = "Fresh/Items"
"""

Box = tuple[float, float, float, float]
HEADER = ["items", "server", "what it needs", "step p50 s", "visible p50 s", "max s", "missed"]
NEEDS = {
    "livemosaic": "nothing (it watches the folder)",
    "mapserver": "gdaltindex of every file",
    "titiler": "MosaicJSON update (cache off)",
}


def bounds(i: int) -> Box:
    """The cell of file ``i`` (rows of ``COLUMNS`` cells, going south)."""
    col, row = i % COLUMNS, i // COLUMNS
    x, y = ORIGIN[0] + col * TINY * PIXEL, ORIGIN[1] - row * TINY * PIXEL
    return (x, y - TINY * PIXEL, x + TINY * PIXEL, y)


def write_tiny(path: Path, i: int) -> Path:
    """A 16×16 GeoTIFF of value 7 at cell ``i``."""
    box = bounds(i)
    with rasterio.open(
        path, "w", driver="GTiff", width=TINY, height=TINY, count=1, dtype="uint8",
        crs="EPSG:3857", transform=from_origin(box[0], box[3], PIXEL, PIXEL),
    ) as dst:  # fmt: skip
        dst.write(np.full((1, TINY, TINY), 7, np.uint8))
    return path


def arrive(folder: Path, i: int) -> tuple[Path, float]:
    """File ``i`` delivered into ``folder``: written as ``.part``, renamed; (path, rename time)."""
    final = folder / f"f_{i:06d}.tif"
    part = write_tiny(final.with_name(final.name + ".part"), i)
    t0 = time.monotonic()
    os.rename(part, final)
    return final, t0


def wait_until(check: Callable[[], bool], since: float) -> float | None:
    """Seconds from ``since`` until ``check()`` is true (None after ``PATIENCE``)."""
    while time.monotonic() - since < PATIENCE:
        try:
            if check():
                return time.monotonic() - since
        except (httpx.HTTPError, OSError, ValueError):
            pass
        time.sleep(POLL)
    return None


def center_pixel(content: bytes) -> tuple[int, ...]:
    """RGBA of an image's middle pixel."""
    image = np.asarray(Image.open(io.BytesIO(content)).convert("RGBA"))
    return tuple(int(v) for v in image[image.shape[0] // 2, image.shape[1] // 2])


def probe_case() -> config.Case:
    """An 8×8 PNG of layer "fresh" (the peers' request builders take a Case)."""
    return config.Case("fresh", "native", 8, "png")


def livemosaic_run(
    work: Path, folder: Path, n: int, first: int
) -> list[tuple[float | None, float | None]]:
    """Catalog ``n`` files, serve with the folder watched, deliver ``ARRIVALS`` files."""
    data = work / "lm-data"
    work.mkdir(parents=True, exist_ok=True)
    ctx = build_context(Settings(_env_file=None, data_dir=data, data_folders=[folder]))
    try:
        ingestor = Ingestor(ctx.catalog, ctx.source, [folder])
        ingestor.create_dataset("fresh", "EPSG:3857")
        ingestor.add_paths("fresh", [folder])
        props = {"hasLiveData": "true"}
        ctx.publisher.publish(ServiceDefinition("Items", "fresh", folder="Fresh", properties=props))
    finally:
        ctx.close()
    rules = work / "rules.toml"
    rules.write_text(RULES.format(folder=folder))
    server = ServerProcess(
        ["--data-dir", str(data), "--data-folder", str(folder)], {}, work, work / "lm.log"
    )
    server.command += ["--watch", str(rules)]
    out: list[tuple[float | None, float | None]] = []
    try:
        server.start(f"/arcgis/rest/services/{SERVICE}/ImageServer?f=json", timeout=300)
        settle(lambda: [server.proc.pid] if server.proc else [], patience=120)
        client = Client(f"{server.base_url}/arcgis")
        for i in range(first, first + ARRIVALS):
            box = bounds(i)
            _, t0 = arrive(folder, i)

            def visible(box: Box = box) -> bool:
                extent = client.info(SERVICE)["extent"]
                covered = extent["ymin"] <= box[1] + 1 and extent["xmax"] >= box[2] - 1
                return covered and client.drawn(SERVICE, box)

            out.append((wait_until(visible, t0), None))
    finally:
        server.stop()
    return out


def mapserver_run(
    work: Path, files: list[Path], first: int
) -> list[tuple[float | None, float | None]]:
    """MapServer over an index of ``files``; each arrival: gdaltindex of all, then drawn?"""
    folder = files[0].parent
    extent = (
        ORIGIN[0],
        bounds(first + ARRIVALS + COLUMNS)[1],
        ORIGIN[0] + COLUMNS * 160,
        ORIGIN[1],
    )
    ms = servers.MapServer(work / "mapserver", extent, {"fresh": files})
    out: list[tuple[float | None, float | None]] = []
    listed = list(files)
    try:
        ms.start(config.mapserver_path(probe_case(), bounds(0)))
        with httpx.Client(trust_env=False, timeout=30) as client:
            for i in range(first, first + ARRIVALS):
                box = bounds(i)
                path, t0 = arrive(folder, i)
                listed.append(path)
                t1 = time.monotonic()
                servers.gdaltindex(ms.work, "fresh", listed)
                step = time.monotonic() - t1
                url = ms.base_url + config.mapserver_path(probe_case(), box)
                seen = wait_until(lambda url=url: center_pixel(client.get(url).content)[0] == 7, t0)
                out.append((seen, step))
    finally:
        ms.stop()
    return out


def titiler_run(
    work: Path, files: list[Path], first: int
) -> list[tuple[float | None, float | None]]:
    """TiTiler over a MosaicJSON of ``files``; each arrival: MosaicJSON update, then drawn?"""
    folder = files[0].parent
    work.mkdir(parents=True, exist_ok=True)
    listing = work / "files.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    mosaic = work / "fresh.json"
    mosaic_tool("create", str(mosaic), str(listing))
    tt = servers.TiTiler(
        work / "titiler", {"fresh": mosaic}, {"COGEO_MOSAIC_CACHE_DISABLE": "TRUE"}
    )
    out: list[tuple[float | None, float | None]] = []
    try:
        tt.start("/healthz")
        with httpx.Client(trust_env=False, timeout=30) as client:
            for i in range(first, first + ARRIVALS):
                box = bounds(i)
                path, t0 = arrive(folder, i)
                step = mosaic_tool("update", str(mosaic), str(path))
                url = tt.base_url + config.titiler_path(probe_case(), box, {"fresh": mosaic})

                def drawn(url: str = url) -> bool:
                    r = client.get(url)
                    return r.status_code == 200 and center_pixel(r.content)[3] > 0

                out.append((wait_until(drawn, t0), step))
    finally:
        tt.stop()
    return out


def mosaic_tool(*args: str) -> float:
    """Run the MosaicJSON tool in the peers' virtualenv; the seconds its own work took."""
    tool = Path(__file__).parent / "mosaicjson_tool.py"
    out = subprocess.run(
        [str(servers.peer_python()), str(tool), *args], check=True, capture_output=True, text=True
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def run(sizes: list[int], args: argparse.Namespace) -> int:
    """Every size, every server; prints the table."""
    print("peers freshness: a complete file renamed into the folder -> drawn by the server")
    print(machine_line())
    rows = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="livemosaic-peers-fresh-"))
        try:
            folder = work / "in"
            folder.mkdir()
            t0 = time.perf_counter()
            files = [write_tiny(folder / f"f_{i:06d}.tif", i) for i in range(n)]
            print(f"  {n} files written in {time.perf_counter() - t0:.1f} s", flush=True)
            results = {
                "livemosaic": livemosaic_run(work / "lm", folder, n, n),
                "mapserver": mapserver_run(work / "ms", files, n + 10),
                "titiler": titiler_run(work / "tt", files, n + 20),
            }
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for name, res in results.items():
            seen = [s for s, _ in res if s is not None]
            steps = [st for _, st in res if st is not None]
            rows.append(
                [
                    f"{n:,}",
                    name,
                    NEEDS[name],
                    f"{statistics.median(steps):.2f}" if steps else "-",
                    f"{statistics.median(seen):.2f}" if seen else "-",
                    f"{max(seen):.2f}" if seen else "-",
                    str(len(res) - len(seen)),
                ]
            )
            print("  " + " | ".join(rows[-1]), flush=True)
    print(f"\n## File renamed into the folder -> drawn ({ARRIVALS} files each, seconds)")
    print(table(HEADER, rows))
    print(
        f"(visible: from the rename until drawn, the step included; missed: not drawn within "
        f"{PATIENCE:.0f} s. The MosaicJSON step is the tool's own work; started as a command it "
        "adds its Python start-up, which the visible time includes.)"
    )
    return 0
