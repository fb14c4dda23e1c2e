"""The registered data folders: the one rule that says whether a path lies inside them.

A path is inside when its *real* path (every symlink resolved) is one of the folders or lies
below one. Callers resolve with :func:`resolve_inside` and get the real path back, so what
they go on to open is what was checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path


def real_folders(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The real paths of the registered data folders."""
    return [Path(os.path.realpath(p)) for p in folders]


def is_inside(real: Path, folders: Sequence[Path]) -> bool:
    """True when the real path ``real`` is one of ``folders`` (real paths) or lies below one."""
    return any(real == folder or folder in real.parents for folder in folders)


def resolve_inside(path: str | os.PathLike[str], folders: Sequence[Path]) -> Path | None:
    """The real path of ``path`` when it lies inside ``folders`` (real paths), else None."""
    real = Path(os.path.realpath(path))
    return real if is_inside(real, folders) else None


__all__ = ["is_inside", "real_folders", "resolve_inside"]
