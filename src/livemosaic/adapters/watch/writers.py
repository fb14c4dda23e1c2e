"""Is a file still open for writing? (Linux ``/proc``; elsewhere nobody can tell.)

The ingest pipeline asks this before it quarantines a file that failed validation: a producer
that pauses longer than the settle time still holds its file open, and moving the file away
would let it finish writing into the quarantine. The answer covers the processes whose
descriptors this process may inspect (its own user's, or all of them as root); a writer on
another machine (NFS, SMB) is never seen, which is why a quarantined file that changes later
is looked at again as well.

The folder watcher asks it too, about files renamed into a folder (or whose marker arrived):
such a file is taken without waiting out the settle time, unless a writer still holds it open
(a producer that renamed its file before closing it), when it settles like any other.
:func:`held_for_writing` answers for many files in one pass.
"""

from __future__ import annotations

import os
from collections.abc import Collection

PROC = "/proc"


def _writes(pid: str, fd: str) -> bool:
    """True when descriptor ``fd`` of process ``pid`` was opened for writing."""
    try:
        with open(f"{PROC}/{pid}/fdinfo/{fd}", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    except (OSError, ValueError, IndexError):
        pass
    return False


def held_for_writing(paths: Collection[str]) -> set[str]:
    """The files among ``paths`` some process holds open for writing (one pass over ``/proc``,
    however many files are asked about; an empty set when nothing is seen)."""
    wanted: set[str] = set()  # the paths as asked (exact link matches)
    identities: dict[tuple[int, int], str] = {}  # (device, inode) -> path
    names: set[str] = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        wanted.add(path)
        identities[(st.st_dev, st.st_ino)] = path
        names.add(os.path.basename(path))
    if not wanted:
        return set()
    try:
        pids = [p for p in os.listdir(PROC) if p.isdigit()]
    except OSError:
        return set()
    held: set[str] = set()
    for pid in pids:
        fd_dir = f"{PROC}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            fd_path = f"{fd_dir}/{fd}"
            try:
                link = os.readlink(fd_path)
            except OSError:
                continue
            if not link.startswith("/"):  # pipes, sockets, anonymous inodes
                continue
            hit = link if link in wanted else _same_file(fd_path, link, names, identities)
            if hit is not None and hit not in held and _writes(pid, fd):
                held.add(hit)
                if len(held) == len(wanted):
                    return held
    return held


def _same_file(
    fd_path: str, link: str, names: set[str], identities: dict[tuple[int, int], str]
) -> str | None:
    """The asked-about path ``link`` reaches through another mount, if any (same name, then
    device and inode compared)."""
    if os.path.basename(link) not in names:
        return None
    try:
        st = os.stat(fd_path)
    except OSError:
        return None
    return identities.get((st.st_dev, st.st_ino))


def open_for_writing(path: str) -> bool:
    """True when a process holds ``path`` open for writing (False when none is seen)."""
    return bool(held_for_writing([path]))


__all__ = ["held_for_writing", "open_for_writing"]
