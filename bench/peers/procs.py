"""CPU time and memory of a server's whole process tree, read from /proc (Linux)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def tree(roots: Iterable[int]) -> list[int]:
    """The pids of ``roots`` and all their descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    todo = [r for r in roots if _stat(r) is not None]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the processes, with that of their waited-for children."""
    total = 0
    for pid in pids:
        f = _stat(pid)
        if f is not None:  # utime stime cutime cstime are fields 14-17
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / TICKS


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident memory of the processes together (pages shared between them counted once
    per process, as ``ps`` does; an upper bound of the machine memory they take)."""
    total = 0
    for pid in pids:
        f = _stat(pid)
        if f is not None:
            total += int(f[21]) * PAGE  # rss, field 24
    return total


class Sampler:
    """Samples the RSS of a process tree every ``interval`` seconds in a thread; keeps the peak
    and every sample (for the soak)."""

    def __init__(self, roots: Callable[[], list[int]], interval: float = 0.5) -> None:
        self.roots = roots
        self.interval = interval
        self.peak = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            value = rss_bytes(tree(self.roots()))
            self.samples.append(value)
            self.peak = max(self.peak, value)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
