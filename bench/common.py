"""Helpers shared by the benchmark scripts: percentiles, tables, a machine line, a load
driver and a server process."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


@dataclass(frozen=True, slots=True)
class Latency:
    """Summary of a list of durations in seconds."""

    n: int
    p50: float
    p99: float
    mean: float
    max: float

    @staticmethod
    def of(durations: Sequence[float]) -> Latency:
        """Summarise durations (seconds)."""
        if not durations:
            nan = float("nan")
            return Latency(0, nan, nan, nan, nan)
        return Latency(
            len(durations),
            percentile(durations, 50),
            percentile(durations, 99),
            statistics.fmean(durations),
            max(durations),
        )


def ms(seconds: float) -> str:
    """Seconds as a millisecond figure with sensible precision."""
    value = seconds * 1000.0
    if value != value:  # NaN
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with right-aligned columns (the first column left-aligned)."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        parts = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class Phase:
    """What one run of a request list measured."""

    durations: list[float] = field(default_factory=list)
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    digests: dict[int, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Completed requests per second of wall time."""
        return len(self.durations) / self.wall if self.wall > 0 else float("nan")


def drive(
    pool: ThreadPoolExecutor,
    workers: int,
    indices: range,
    seconds: float,
    call: Callable[[int], tuple[int, bytes]],
    phase: Phase,
) -> int:
    """Run requests ``indices`` on ``workers`` threads of ``pool`` until done or out of time.

    ``call(i)`` returns (items used or -1, body); an exception counts as an error. No new
    request starts after ``seconds``; the wall time (added to ``phase``) includes the
    requests still running. Returns how many requests were started.
    """
    lock = threading.Lock()
    next_index = iter(indices)
    started = 0
    start = time.perf_counter()
    deadline = start + seconds

    def worker() -> None:
        nonlocal started
        while time.perf_counter() < deadline:
            with lock:
                i = next(next_index, None)
                started += i is not None
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                items, body = call(i)
            except Exception as exc:  # report, keep measuring the others
                with lock:
                    phase.errors.append(f"request {i}: {type(exc).__name__}: {exc}"[:300])
                continue
            took = time.perf_counter() - t0
            with lock:
                phase.durations.append(took)
                if items >= 0:
                    phase.items.append(items)
                if i < 3:
                    phase.digests[i] = hashlib.sha256(body).hexdigest()

    futures = [pool.submit(worker) for _ in range(workers)]
    for f in futures:
        f.result()
    phase.wall += time.perf_counter() - start
    return started


def machine_line() -> str:
    """Cores, load average and versions: what a reader needs to weigh the figures."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    try:
        import rasterio

        gdal = f", GDAL {rasterio.__gdal_version__}"
    except ImportError:
        gdal = ""
    py = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return (
        f"machine: {os.cpu_count()} cores, load average {load} (1/5/15 min), "
        f"{platform.system()} {platform.machine()}, Python {py}{gdal}"
    )


def parallel_capacity(seconds: float = 1.0) -> float:
    """How many cores' worth of work two threads get done right now (about 2.0 when idle).

    zlib releases the GIL, so this measures the CPUs the machine gives this process, not
    Python; the figure to weigh an N-thread speed-up against on a shared machine.
    """
    import threading
    import zlib

    payload = os.urandom(256 * 1024)

    def spin(counts: list[int], index: int, until: float) -> None:
        while time.perf_counter() < until:
            zlib.compress(payload, 6)
            counts[index] += 1

    single = [0]
    spin(single, 0, time.perf_counter() + seconds)
    pair = [0, 0]
    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=spin, args=(pair, i, until)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(pair) / max(single[0], 1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``livemosaic serve`` in a subprocess on 127.0.0.1 at a free port, stopped on exit.

    ``args`` are the global CLI options (``--data-dir`` …); ``env`` is added to the
    environment. The server's output goes to ``log_path``, shown when it fails to start.
    """

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path, log_path: Path):
        self.port = free_port()
        script = Path(sys.executable).parent / "livemosaic"
        launcher = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-c", "from livemosaic.cli.main import main; main()"]
        )
        self.command = [
            *launcher,
            *args,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self.env = {**os.environ, **env}
        self.cwd = cwd
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str, timeout: float = 60.0) -> None:
        """Start the server and wait until ``ready_path`` answers 200 without an error body."""
        import httpx

        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = client.get(self.base_url + ready_path)
                    if r.status_code == 200 and b'"error"' not in r.content[:200]:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        log_text = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"the server did not become ready at {ready_path}:\n{log_text}")

    def stop(self) -> None:
        """Ask the server to shut down (SIGTERM), killing it after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
