"""One measured load run: wrk against one server, with the server's CPU and peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from peers.procs import Sampler, cpu_seconds, tree
from peers.report import Run


def _cpu_by_pid(roots: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in tree(roots)}


def wrk(
    base_url: str,
    paths_file: Path,
    script: Path,
    connections: int,
    seconds: float,
    roots: Callable[[], list[int]],
    sample_every: float = 0.5,
) -> tuple[dict[str, float], float, int, list[int]]:
    """Run wrk; (its figures, server CPU seconds, peak RSS bytes, RSS samples)."""
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
    after = _cpu_by_pid(roots())
    cpu = sum(v - before.get(pid, 0.0) for pid, v in after.items())
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk gave no figures: {out.stdout[-500:]} {out.stderr[-500:]}")
    return json.loads(lines[-1]), cpu, sampler.peak, sampler.samples


def settle(roots: Callable[[], list[int]], idle: float = 0.05, patience: float = 30.0) -> None:
    """Wait until the server's tree uses under ``idle`` of a core (the requests wrk left in
    flight are finished), so that they do not count against the next server's run."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        pids = tree(roots())
        before = cpu_seconds(pids)
        time.sleep(0.3)
        if cpu_seconds(pids) - before < idle * 0.3:
            return


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
    settle(roots)
    return Run(
        server=server,
        case=case_label,
        connections=connections,
        rep=rep,
        requests=int(figures["requests"]),
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=int(figures["errors"] + figures["status_errors"]),
        cpu_seconds=cpu,
        peak_rss=peak,
    )
