"""Quarantine moves that never race with the file's writer.

A file that failed validation is moved into the rule's quarantine folder only while it is
*stable*: its version (size, mtime, inode) is still the one that was checked, and no process
holds it open for writing (when that can be told: the pipeline's ``WriterCheck``). The move is a rename,
so a writer nobody could see (one on another machine) that resumes afterwards keeps writing
into the same inode, now in the quarantine: the watcher notices that the quarantined file
changed and brings it back (:func:`move_back`) to be read again. A file that changed within
the move itself is put back at once. Across filesystems a file is never moved: a copy would
lose what a writer adds afterwards, so it is quarantined in place.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from livemosaic.core.watch_rules import WatchRule

Version = tuple[int, int, int]  # (size, mtime_ns, inode)
WriterCheck = Callable[[str], bool]  # True when some process holds the file open for writing
MoveResult = Literal["moved", "changed", "kept"]


@dataclass(frozen=True, slots=True)
class Move:
    """What became of one quarantine move."""

    result: MoveResult  # moved; changed (left, or put back, to be read again); kept in place
    why: str = ""  # for "kept": why the file could not be moved


def file_version(path: str) -> Version | None:
    """(size, mtime_ns, inode) of a file, None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def quarantine_target(rule: WatchRule, path: str) -> str:
    """Where move-mode quarantine puts ``path``: its place under the folder, in the
    quarantine folder (a time stamp added when that name is taken)."""
    root = rule.effective_quarantine_dir
    try:
        rel = Path(path).relative_to(os.path.realpath(rule.folder))
    except ValueError:
        rel = Path(Path(path).name)
    target = root / rel
    if target.exists():
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = target.with_name(f"{target.stem}.{stamp}{target.suffix}")
    return str(target)


def move_aside(path: str, target: str, version: Version) -> Move:
    """Move a bad file to ``target`` if it is still the checked ``version``; a file that
    changed (before or during the move) stays where it arrived."""
    if file_version(path) != version:
        return Move("changed")
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)  # the quarantine folder is ours: the name was just chosen
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            why = "not moved: the quarantine folder is on another filesystem"
        else:
            why = f"could not be moved to {target}: {exc.strerror}"
        return Move("kept", why)
    if file_version(target) != version and move_back(target, path):
        return Move("changed")  # written to while it moved: put back
    return Move("moved")


def move_back(moved_to: str, path: str) -> bool:
    """Move a quarantined file back to ``path``; False when that name is taken by another
    file (a file that is the same one, left by an interrupted move, is just unlinked) or the
    quarantined file is gone."""
    try:
        os.link(moved_to, path)  # never replaces a file the producer put there meanwhile
    except FileNotFoundError:
        return False
    except FileExistsError:
        if not os.path.samefile(moved_to, path):
            return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(path):  # a filesystem without hard links
            return False
        os.rename(moved_to, path)
        return True
    os.unlink(moved_to)
    return True


__all__ = [
    "Move",
    "MoveResult",
    "Version",
    "WriterCheck",
    "file_version",
    "move_aside",
    "move_back",
    "quarantine_target",
]
