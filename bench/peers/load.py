"""Measured runs against one server, with the CPU and peak RSS of its whole process tree:

- ``sequential``: one request at a time (concurrency 1), nothing else on the server;
- ``measure``: wrk with N connections. wrk stops with one request in flight per connection
  and the server finishes them after it; so the server's CPU is counted until it is idle
  again and divided by the completed requests plus the connections (``cpu_per_request``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from peers.procs import Sampler, cpu_seconds, rss_bytes, tree
from peers.report import Run

SETTLE_PATIENCE = 300.0  # seconds to wait for a server to finish abandoned requests


def _cpu_by_pid(roots: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in tree(roots)}


def _cpu_since(before: dict[int, float], roots: list[int]) -> float:
    after = _cpu_by_pid(roots)
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def settle(
    roots: Callable[[], list[int]], idle: float = 0.05, patience: float = SETTLE_PATIENCE
) -> bool:
    """Wait until the server's tree uses under ``idle`` of a core (requests wrk left in flight
    are finished); False when it is still busy after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        pids = tree(roots())
        before = cpu_seconds(pids)
        time.sleep(0.3)
        if cpu_seconds(pids) - before < idle * 0.3:
            return True
    return False


def wrk(
    base_url: str,
    paths_file: Path,
    script: Path,
    connections: int,
    seconds: float,
    roots: Callable[[], list[int]],
    sample_every: float = 0.5,
) -> tuple[dict[str, float], float, int, list[int]]:
    """Run wrk, then wait for the server to settle; (wrk's figures, server CPU seconds until
    settled, peak RSS bytes, RSS samples)."""
    before = _cpu_by_pid(roots())
    command = ["wrk", "-t", str(min(2, connections)), "-c", str(connections)]
    command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "120s", "-s", str(script)]
    with Sampler(roots, sample_every) as sampler:
        out = subprocess.run(
            [*command, base_url + "/"],
            env={**os.environ, "WRK_PATHS": str(paths_file)},
            capture_output=True,
            text=True,
            check=False,
        )
        settled = settle(roots)
    cpu = _cpu_since(before, roots())
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk gave no figures: {out.stdout[-500:]} {out.stderr[-500:]}")
    figures = json.loads(lines[-1])
    figures["settled"] = float(settled)
    return figures, cpu, sampler.peak, sampler.samples


def cpu_per_request(cpu: float, completed: int, connections: int) -> float:
    """Server CPU seconds per request of a wrk run whose CPU was counted until the server was
    idle: the requests in flight when wrk stopped (one per connection) were served too."""
    return cpu / (completed + connections)


def measure(
    server: str,
    base_url: str,
    roots: Callable[[], list[int]],
    case_label: str,
    paths_file: Path,
    script: Path,
    connections: int,
    seconds: float,
    rep: int,
) -> Run:
    """One wrk run turned into a ``Run``."""
    figures, cpu, peak, _ = wrk(base_url, paths_file, script, connections, seconds, roots)
    completed = int(figures["requests"])
    if not figures["settled"]:
        print(f"  note: {server} still busy {SETTLE_PATIENCE:.0f} s after wrk ({case_label})")
    return Run(
        server=server,
        case=case_label,
        connections=connections,
        rep=rep,
        requests=completed,
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000 if completed else float("nan"),
        p99_ms=figures["p99_us"] / 1000 if completed else float("nan"),
        errors=int(figures["errors"] + figures["status_errors"]),
        cpu_seconds=cpu_per_request(cpu, completed, connections) * completed,
        peak_rss=peak,
    )


def sequential(
    server: str,
    base_url: str,
    roots: Callable[[], list[int]],
    case_label: str,
    paths: list[str],
    count: int,
    rep: int,
) -> Run:
    """``count`` requests one after the other. The server's CPU is counted over all of them
    and divided by ``count`` (the kernel counts CPU in ticks of 10 ms: one request alone
    would be rounded to a tick)."""
    walls: list[float] = []
    errors = 0
    peak = 0
    before = _cpu_by_pid(roots())
    with httpx.Client(trust_env=False, timeout=300) as client:
        for i in range(count):
            path = paths[(rep * count + i) % len(paths)]
            t0 = time.perf_counter()
            r = client.get(base_url + path)
            walls.append(time.perf_counter() - t0)
            peak = max(peak, rss_bytes(tree(roots())))
            errors += r.status_code != 200
    cpu = _cpu_since(before, roots())
    return Run(
        server=server,
        case=case_label,
        connections=1,
        rep=rep,
        requests=count,
        seconds=sum(walls),
        p50_ms=1000 * statistics.median(walls),
        p99_ms=1000 * max(walls),  # the largest of a handful
        errors=errors,
        cpu_seconds=cpu,
        peak_rss=peak,
    )
