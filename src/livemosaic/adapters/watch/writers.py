"""Is a file still open for writing? (Linux ``/proc``; elsewhere nobody can tell.)

The ingest pipeline asks this before it quarantines a file that failed validation: a producer
that pauses longer than the settle time still holds its file open, and moving the file away
would let it finish writing into the quarantine. The answer covers the processes whose
descriptors this process may inspect (its own user's, or all of them as root); a writer on
another machine (NFS, SMB) is never seen, which is why a quarantined file that changes later
is looked at again as well.
"""

from __future__ import annotations

import os

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


def _same_file(fd_path: str, link: str, path: str, identity: tuple[int, int]) -> bool:
    if link == path:
        return True
    if os.path.basename(link) != os.path.basename(path):
        return False
    try:  # the same file reached through another mount: compare device and inode
        st = os.stat(fd_path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == identity


def open_for_writing(path: str) -> bool:
    """True when a process holds ``path`` open for writing (False when none is seen)."""
    try:
        st = os.stat(path)
        pids = [p for p in os.listdir(PROC) if p.isdigit()]
    except OSError:
        return False
    identity = (st.st_dev, st.st_ino)
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
            if _same_file(fd_path, link, path, identity) and _writes(pid, fd):
                return True
    return False


__all__ = ["open_for_writing"]
