"""`livemosaic serve --loop/--http`: the event loop and HTTP parser are chosen on purpose
(uvloop and httptools are dependencies; asyncio and h11 stay selectable)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent / "livemosaic"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_uvloop_and_httptools_are_installed() -> None:
    import httptools  # noqa: F401
    import uvloop  # noqa: F401


@pytest.mark.parametrize(("loop", "http"), [("uvloop", "httptools"), ("asyncio", "h11")])
def test_serve_with_loop_and_parser(tmp_path: Path, loop: str, http: str) -> None:
    port = free_port()
    env = dict(os.environ)
    env.pop("LIVEMOSAIC_DATA_FOLDERS", None)
    args = [str(BIN), "--data-dir", str(tmp_path / "data"), "serve", "--port", str(port)]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [*args, "--loop", loop, "--http", http], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/arcgis/rest/services", params={"f": "json"}
                )
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer is not None, (tmp_path / "serve.log").read_text()
        assert answer.status_code == 200
        assert "services" in answer.json()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_serve_refuses_an_unknown_loop(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN), "--data-dir", str(tmp_path / "data"), "serve", "--loop", "twisted"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "twisted" in done.stderr
