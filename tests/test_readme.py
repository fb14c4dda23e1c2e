"""Every code block of the README runs as written, in order, against the demo server, on a
machine without internet.

The server is started as ``scripts/serve`` starts it (``livemosaic --data-dir data serve
--demo``), in a scratch folder that stands for the repository (its ``.venv`` is this one), on a
free port instead of 8080. Outgoing connections other than to 127.0.0.1 go to a proxy address
where nothing listens, so a snippet that reaches for an online portal fails here as it would on
a closed network. The ArcGIS API for Python snippets run in the environment made by
``scripts/install-arcgis-client`` (``LIVEMOSAIC_ARCGIS_PYTHON``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT

FENCE = re.compile(r"^( *)```(bash|python)\n(.*?)^\1```", re.M | re.S)
README_PORT = "127.0.0.1:8080"
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens: any connection beyond loopback fails


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of every bash/python block after the two set-up commands."""
    text = (REPO_ROOT / "README.md").read_text()
    blocks = [(m.group(2), textwrap.dedent(m.group(3))) for m in FENCE.finditer(text)]
    assert blocks[0] == ("bash", "scripts/serve\nscripts/test\n"), "the set-up commands moved"
    return blocks[1:]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMOSAIC_")}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[key] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["HOME"] = str(home)  # the ArcGIS API writes its settings under the home folder
    return env


def wait_for(url: str, server: subprocess.Popen[bytes], seconds: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            r = httpx.get(url, params={"f": "json"}, timeout=5)
            if r.status_code == 200 and "error" not in r.json():
                body: dict[str, object] = r.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no answer from {url}")


def test_readme_code_blocks_run_as_written(tmp_path: Path) -> None:
    arcgis_python = os.environ.get("LIVEMOSAIC_ARCGIS_PYTHON")
    if not arcgis_python and not os.environ.get("CI"):
        pytest.skip("the ArcGIS API for Python is not installed (scripts/install-arcgis-client)")
    assert arcgis_python, "CI must install the ArcGIS API for Python (scripts/test does)"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = offline_env(tmp_path / "home")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [".venv/bin/livemosaic", "--data-dir", "data", "serve", "--demo", "--port", str(port)],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    services = f"http://127.0.0.1:{port}/arcgis/rest/services"
    try:
        before = wait_for(f"{services}/Demo/Landsat/ImageServer", server)
        for index, (language, code) in enumerate(readme_blocks(), start=2):
            code = code.replace(README_PORT, f"127.0.0.1:{port}")
            if language == "bash":
                cmd = ["bash", "-euo", "pipefail", "-c", code]
            elif re.search(r"^(from|import) arcgis", code, re.M):
                cmd = [arcgis_python, "-c", code]
            else:
                cmd = [sys.executable, "-c", code]
            proc = subprocess.run(
                cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            assert proc.returncode == 0, f"README block {index} failed:\n{code}\n{proc.stderr}"
            assert "Traceback" not in proc.stderr, f"README block {index}:\n{proc.stderr}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    # what the blocks promised happened
    for name in ("landsat.png", "stretched.png", "tile2.png", "out.png"):
        assert (repo / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (repo / "data" / "incoming" / "east.tif").exists()
    log_text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log_text, log_text[-3000:]
    assert before["extent"], "the demo service has an extent"
