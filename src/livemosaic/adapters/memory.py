"""Handing freed heap memory back to the operating system, and reading the process's RSS.

numpy frees a large array straight back to the system (glibc serves allocations above its mmap
threshold with their own mappings), but the many smaller buffers of a request (masks, per-band
temporaries, GDAL blocks) come from glibc's per-thread arenas, which keep freed memory for
reuse: after a burst of large requests the resident set stays high. ``malloc_trim(0)`` returns
the free tops and free pages of every arena. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return libc


def trim_heap() -> bool:
    """Return free heap memory to the system (glibc); True when something was released."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


_last_trim = 0.0  # time.monotonic() of the last trim_heap_every that trimmed


def trim_heap_every(seconds: float) -> bool:
    """:func:`trim_heap` when the last call that trimmed was ``seconds`` ago or more (each
    trim costs about a quarter of a millisecond, too much after every small request; a
    race between threads at worst trims twice). True when it trimmed."""
    global _last_trim
    now = time.monotonic()
    if seconds <= 0 or now - _last_trim < seconds:
        return False
    _last_trim = now
    trim_heap()
    return True


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process in bytes (VmRSS; 0 where /proc is not available)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


__all__ = ["rss_bytes", "trim_heap", "trim_heap_every"]
