"""Helpers for the ArcGIS API for Python tests: run client scripts in the separate
``.venv-arcgis`` environment and read their per-step results.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.liveserver import Recorded

SCRIPTS = Path(__file__).resolve().parent / "scripts"
CLIENT_TIMEOUT = 240.0


def run_client(python: Path, script: str, *args: str, timeout: float = CLIENT_TIMEOUT) -> Any:
    """Run ``scripts/<script>`` with the arcgis environment's python; its JSON result."""
    env = dict(os.environ)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [str(python), str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(SCRIPTS),
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0 and lines, (
        f"{script} exited with {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-5000:]}"
    )
    return json.loads(lines[-1])


def step(results: dict[str, Any], name: str) -> Any:
    """The value of a client step; fails with the client's error and traceback otherwise."""
    assert name in results, f"step {name!r} did not run; steps: {sorted(results)}"
    outcome = results[name]
    assert outcome["ok"], f"client step {name!r} failed: {outcome['error']}\n{outcome['traceback']}"
    return outcome["value"]


def failure(results: dict[str, Any], name: str) -> str:
    """The error text of a client step that is expected to fail."""
    outcome = results[name]
    assert not outcome["ok"], f"client step {name!r} unexpectedly succeeded: {outcome['value']}"
    return str(outcome["error"])


def paths_of(requests: list[Recorded]) -> list[str]:
    """``METHOD path`` of each recorded request (lower-cased path) for assertion messages."""
    return [f"{r.method} {r.path.lower()}" for r in requests]
