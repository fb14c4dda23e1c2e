"""The suite's results and their tables: medians over repetitions and livemosaic's ratios to
each peer and to the floor. Pure functions (tested)."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import table  # noqa: E402

SUBJECT = "livemosaic"


@dataclass(frozen=True, slots=True)
class Run:
    """One wrk run of one server on one case."""

    server: str
    case: str
    connections: int
    rep: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_seconds: float  # the server's whole process tree
    peak_rss: int  # bytes, the whole process tree

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per request."""
        return 1000 * self.cpu_seconds / self.requests if self.requests else float("nan")


@dataclass(frozen=True, slots=True)
class Summary:
    """Medians (and the CPU range) of a server's runs on one case and concurrency."""

    server: str
    case: str
    connections: int
    reps: int
    cpu_ms: float
    cpu_low: float
    cpu_high: float
    rate: float
    p50_ms: float
    p99_ms: float
    peak_rss: int  # the largest of the repetitions
    errors: int  # all repetitions together


def summarise(runs: Sequence[Run]) -> list[Summary]:
    """One Summary per (case, connections, server), in the order first seen."""
    groups: dict[tuple[str, int, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.case, run.connections, run.server), []).append(run)
    out = []
    for (case, conns, server), group in groups.items():
        cpu = [r.cpu_ms for r in group]
        out.append(
            Summary(
                server=server,
                case=case,
                connections=conns,
                reps=len(group),
                cpu_ms=statistics.median(cpu),
                cpu_low=min(cpu),
                cpu_high=max(cpu),
                rate=statistics.median(r.rate for r in group),
                p50_ms=statistics.median(r.p50_ms for r in group),
                p99_ms=statistics.median(r.p99_ms for r in group),
                peak_rss=max(r.peak_rss for r in group),
                errors=sum(r.errors for r in group),
            )
        )
    return out


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` with two decimals, "-" when either is missing or b is zero."""
    if a is None or b is None or b == 0 or a != a or b != b:
        return "-"
    return f"{a / b:.2f}"


def fmt(value: float) -> str:
    """A figure with precision that suits its size ("-" for NaN)."""
    if value != value:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cpu_cell(s: Summary) -> str:
    """Median CPU ms, with the range when there were several repetitions."""
    if s.reps > 1 and s.cpu_high > s.cpu_low:
        return f"{fmt(s.cpu_ms)} ({fmt(s.cpu_low)}-{fmt(s.cpu_high)})"
    return fmt(s.cpu_ms)


def detail_table(summaries: Sequence[Summary], labels: dict[str, str]) -> str:
    """Every server on every case: CPU ms/request, req/s, p50/p99, peak RSS, errors."""
    rows = [
        [
            s.case,
            str(s.connections),
            labels.get(s.server, s.server),
            cpu_cell(s),
            fmt(s.rate),
            fmt(s.p50_ms),
            fmt(s.p99_ms),
            f"{s.peak_rss / 2**20:.0f}",
            str(s.errors),
        ]
        for s in summaries
    ]
    header = ["case", "c", "server", "CPU ms/req", "req/s", "p50 ms", "p99 ms", "RSS MB"]
    return table([*header, "errors"], rows)


def ratio_table(
    summaries: Sequence[Summary], floors: dict[str, float], peers: Sequence[str]
) -> str:
    """livemosaic / each peer (CPU per request, req/s, peak RSS) and livemosaic / floor (CPU).

    CPU and RSS ratios below 1 and req/s ratios above 1 are in livemosaic's favour.
    """
    by_key = {(s.case, s.connections, s.server): s for s in summaries}
    keys = list(dict.fromkeys((s.case, s.connections) for s in summaries))
    header = ["case", "c", "floor CPU ms", "lm/floor CPU"]
    for peer in peers:
        header += [f"lm/{peer} CPU", f"lm/{peer} req/s", f"lm/{peer} RSS"]
    rows = []
    for case, conns in keys:
        lm = by_key.get((case, conns, SUBJECT))
        floor = floors.get(case)
        row = [case, str(conns), fmt(floor) if floor is not None else "-"]
        row.append(ratio(lm.cpu_ms if lm else None, floor))
        for peer in peers:
            other = by_key.get((case, conns, peer))
            row += [
                ratio(lm.cpu_ms if lm else None, other.cpu_ms if other else None),
                ratio(lm.rate if lm else None, other.rate if other else None),
                ratio(lm.peak_rss if lm else None, other.peak_rss if other else None),
            ]
        rows.append(row)
    return table(header, rows)


def is_flat(samples: Sequence[int], tolerance: float = 0.05) -> bool:
    """True when memory stopped growing: the last quarter of the samples peaks within
    ``tolerance`` of the peak of the second quarter (the first quarter is warm-up)."""
    if len(samples) < 8:
        return False
    n = len(samples)
    settled = max(samples[n // 4 : n // 2])
    return max(samples[3 * n // 4 :]) <= settled * (1 + tolerance)


def differing_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of pixels of two (rows, cols, bands) images that differ in any band."""
    if a.shape != b.shape:
        raise ValueError(f"the images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.any(a != b, axis=-1).mean())
