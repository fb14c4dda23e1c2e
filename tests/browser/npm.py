"""npm projects the browser tests build: installed from their package-lock.json, never a CDN.

``npm_project(folder)`` runs ``npm ci`` when ``node_modules`` was not installed from the
current lock file (a marker file records the lock it was installed from), so repeated test
runs reuse it. Without node and npm the calling test is skipped, or fails under ``CI``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MARKER = ".livemosaic-lock"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI where everything it needs must be installed."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under CI: scripts/install-browser installs it)")
    pytest.skip(reason)


def node() -> str:
    """The node executable."""
    path = shutil.which("node")
    if path is None or shutil.which("npm") is None:
        unavailable("node and npm are not installed")
    assert path is not None
    return path


def npm_project(folder: Path) -> Path:
    """``folder`` with its node_modules installed from its package-lock.json."""
    node()
    npm = shutil.which("npm")
    assert npm is not None
    lock = (folder / "package-lock.json").read_bytes()
    marker = folder / "node_modules" / MARKER
    if not marker.is_file() or marker.read_bytes() != lock:
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder, check=True
        )
        marker.write_bytes(lock)
    return folder


def main(folders: list[str]) -> None:
    """Install the npm projects named on the command line (``scripts/install-browser``)."""
    for folder in folders:
        npm_project(Path(folder))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
