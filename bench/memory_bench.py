"""Memory and time of the largest exportImage: RSS the server adds, and how long it takes.

Builds a catalog of the four sample mosaic tiles (``mosaic/rgb1-4.tif`` of the shared sample
data, ``--data``), publishes it and starts ``livemosaic serve`` on 127.0.0.1. It samples the
server's resident set (``VmRSS`` of ``/proc/<pid>/status``) every 20 ms while it sends one
anonymous ``exportImage`` of the whole mosaic at the largest documented size
(``--size``, default 15000,4100) with ``pixelType=F64`` and ``format=tiff`` (``--format``;
``--concurrent N`` sends N at once), then waits ``--settle`` seconds and samples again. It prints the HTTP status, the ArcGIS error code
if any, the time taken, the RSS before, at the peak and after, and the RSS added.

    .venv/bin/python bench/memory_bench.py --data ../shared/data
    .venv/bin/python bench/memory_bench.py --data ../shared/data --size 4000,4000 --quick

Only 127.0.0.1 is contacted; temporary files and the server are removed. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import ServerProcess

from livemosaic.app import build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.settings import Settings

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "LIVEMOSAIC_SAMPLE_DATA", "../shared/data")))  # fmt: skip
    parser.add_argument("--size", default="15000,4100")
    parser.add_argument("--pixel-type", default="F64")
    parser.add_argument("--format", default="tiff")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="a 2000x1000 request")
    parser.add_argument("--concurrent", type=int, default=1, help="send N such requests at once")
    parser.add_argument("--env", action="append", default=[], help="extra KEY=VALUE settings")
    args = parser.parse_args()
    size = "2000,1000" if args.quick else args.size
    tiles = sorted((args.data / "mosaic").glob("rgb*.tif"))
    if not tiles:
        sys.exit(f"no mosaic tiles under {args.data}/mosaic")
    work = Path(tempfile.mkdtemp(prefix="lm-membench-"))
    try:
        settings = Settings(data_dir=work / "data", data_folders=[args.data.resolve()])
        ctx = build_context(settings)
        ing = Ingestor(ctx.catalog, ctx.source, list(settings.data_folders))
        ing.create_dataset("tiles")
        ing.add_paths("tiles", [p.resolve() for p in tiles])
        ctx.publisher.publish(ServiceDefinition(name="tiles", dataset="tiles"))
        ctx.close()
        env = dict(e.split("=", 1) for e in args.env)
        server = ServerProcess(["--data-dir", str(work / "data")], env, work, work / "server.log")
        svc = "/arcgis/rest/services/tiles/ImageServer"
        with server:
            server.start(svc + "?f=json")
            assert server.proc is not None
            pid = server.proc.pid
            with httpx.Client(trust_env=False, timeout=600) as client:
                info = client.get(server.base_url + svc, params={"f": "json"}).json()
                ext = info["extent"]
                bbox = f"{ext['xmin']},{ext['ymin']},{ext['xmax']},{ext['ymax']}"
                time.sleep(1.0)
                start = rss_mib(pid)
                peak = [start]
                done = threading.Event()

                def sample() -> None:
                    while not done.is_set():
                        peak[0] = max(peak[0], rss_mib(pid))
                        time.sleep(0.02)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                params = {"bbox": bbox, "size": size, "pixelType": args.pixel_type,
                          "format": args.format, "f": "image"}  # fmt: skip
                url = server.base_url + svc + "/exportImage"
                answers: list[httpx.Response] = []

                def one() -> None:
                    with httpx.Client(trust_env=False, timeout=600) as c:
                        answers.append(c.get(url, params=params))

                t0 = time.monotonic()
                senders = [threading.Thread(target=one) for _ in range(args.concurrent)]
                for t in senders:
                    t.start()
                for t in senders:
                    t.join()
                elapsed = time.monotonic() - t0
                time.sleep(args.settle)
                done.set()
                sampler.join()
                end = rss_mib(pid)
        print(f"request: {args.concurrent} x exportImage size={size} "
              f"pixelType={args.pixel_type} format={args.format}")  # fmt: skip
        if len(answers) > 3:  # a summary: how many answers of each kind, and how fast
            kinds: dict[str, int] = {}
            for r in answers:
                code = None
                if r.headers.get("content-type", "").startswith("application/json"):
                    code = json.loads(r.content).get("error", {}).get("code")
                key = f"HTTP {r.status_code}" + (f" code {code}" if code else "")
                kinds[key] = kinds.get(key, 0) + 1
            print("answers: " + ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items())))
            answers = answers[:0]
        for r in answers:
            code = None
            if r.headers.get("content-type", "").startswith("application/json"):
                code = json.loads(r.content).get("error", {}).get("code")
            print(f"status: HTTP {r.status_code}, error code {code}, "
                  f"{len(r.content) / MIB:.1f} MiB")  # fmt: skip
            if code is not None:
                print(f"error: {r.text[:600]}")
        print(f"time: {elapsed:.1f} s")
        print(f"rss: start {start:.0f} MiB, peak {peak[0]:.0f} MiB, end {end:.0f} MiB")
        print(f"rss added: peak {peak[0] - start:.0f} MiB, after {end - start:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
