"""Handing freed heap back: the rate limit of trims after small requests."""

from __future__ import annotations

import time

from livemosaic.adapters import memory
from livemosaic.adapters.memory import rss_bytes, trim_heap_every


def test_trims_at_most_once_per_interval() -> None:
    memory._last_trim = 0.0
    assert trim_heap_every(0.2) is True  # long since the last: trims
    assert trim_heap_every(0.2) is False  # just trimmed: not again
    time.sleep(0.25)
    assert trim_heap_every(0.2) is True
    assert trim_heap_every(0) is False  # 0: never on a schedule


def test_a_trim_gives_freed_heap_back() -> None:
    # small buffers (below glibc's mmap threshold) freed between live ones leave holes the
    # heap keeps; the trim hands their pages back
    if rss_bytes() == 0:  # no /proc here
        return
    memory._last_trim = 0.0
    trim_heap_every(0.0001)
    blocks = [bytearray(b"x" * (64 * 1024)) for _ in range(4000)]  # about 256 MiB
    kept = blocks[::8]
    grown = rss_bytes()
    del blocks
    freed = rss_bytes()
    assert grown - freed < 64 * 1024 * 1024  # the holes stay resident until trimmed
    time.sleep(0.01)
    assert trim_heap_every(0.0001) is True
    after = rss_bytes()
    assert freed - after > 150 * 1024 * 1024, (grown, freed, after)
    assert len(kept) == 500
