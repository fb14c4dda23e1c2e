"""The committed live-viewer bundle is what its sources build (viewer/, npm run check).

The viewer's JavaScript ships inside the package as a built bundle; a change to viewer/src
or to its package-lock.json without a rebuild would ship stale code. This rebuilds it from
the lock file and fails on any difference (viewer.js, viewer.css, third-party-licenses.txt).
"""

from __future__ import annotations

import subprocess

from tests.browser.npm import node, npm_project
from tests.conftest import REPO_ROOT


def test_committed_viewer_bundle_matches_a_fresh_build() -> None:
    viewer = npm_project(REPO_ROOT / "viewer")
    result = subprocess.run(
        [node(), "build.mjs", "--check"], cwd=viewer, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout
