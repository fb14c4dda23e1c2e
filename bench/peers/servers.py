"""Start and stop the three servers on 127.0.0.1 at free ports, each with two workers.

- **livemosaic**: ``livemosaic serve --workers 2`` (uvicorn) on a catalog of both layers.
- **MapServer**: ``mapserv`` as two FastCGI processes (spawn-fcgi) behind nginx, one GDAL
  tile index per layer, datasets kept open (``CLOSE_CONNECTION=DEFER``): its fastest setup.
- **TiTiler**: ``titiler.mosaic``'s MosaicTilerFactory with the bbox endpoint, uvicorn with
  two workers, from the separate virtualenv ``.venv-peers``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import ServerProcess, free_port  # noqa: E402

from peers import config  # noqa: E402
from peers.procs import tree  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PEERS_VENV = REPO / ".venv-peers"
WORKERS = 2  # server processes of each server (the default of --workers)


def wait_ready(url: str, timeout: float, alive: callable) -> None:  # type: ignore[valid-type]
    """Poll ``url`` until it answers 200 (RuntimeError after ``timeout`` or if not alive)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        while time.monotonic() < deadline:
            if not alive():
                break
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"not ready: {url}")


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_all(pids: list[int], grace: float) -> None:
    """SIGTERM to each of ``pids`` still running, SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for pid in pids:
            if _running(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_running(p) for p in pids):
            time.sleep(0.1)


def gdaltindex(folder: Path, name: str, files: list[Path]) -> Path:
    """A new tile index ``folder/<name>_index.shp`` of ``files`` (the list passed in a file)."""
    index = folder / f"{name}_index.shp"
    for old in folder.glob(f"{name}_index.*"):
        old.unlink()
    listing = folder / f"{name}_files.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    subprocess.run(
        ["gdaltindex", str(index), "--optfile", str(listing)],
        check=True,
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    return index


class Server:
    """A server under test: its name, base URL and the roots of its process tree."""

    name = ""
    label = ""

    def __init__(self, work: Path, workers: int = WORKERS) -> None:
        self.work = work
        self.workers = workers
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def roots(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def start(self, probe_path: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """SIGTERM to the processes started, then SIGKILL to whatever of their tree is left
        after 10 s (uvicorn's workers finish their requests first, which can take long)."""
        family = tree(self.roots())
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs = []
        kill_all(family, grace=10.0)

    def log(self, name: str) -> Path:
        self.work.mkdir(parents=True, exist_ok=True)
        return self.work / f"{self.name}-{name}.log"


class LiveMosaic(Server):
    """``livemosaic serve --workers 2`` over an existing data directory."""

    name = "livemosaic"

    def __init__(
        self,
        work: Path,
        data_dir: Path,
        folders: list[Path],
        max_items: int,
        workers: int = WORKERS,
    ) -> None:
        super().__init__(work, workers)
        args = ["--data-dir", str(data_dir)]
        for folder in folders:
            args += ["--data-folder", str(folder)]
        env = {"LIVEMOSAIC_MAX_MOSAIC_IMAGE_COUNT": str(max_items)}
        self.server = ServerProcess(args, env, cwd=work, log_path=self.log("serve"))
        self.server.command += ["--workers", str(self.workers)]
        self.port = self.server.port
        self.label = f"livemosaic {self.workers} workers"

    def roots(self) -> list[int]:
        proc = self.server.proc
        return [proc.pid] if proc is not None and proc.poll() is None else []

    def start(self, probe_path: str) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.server.start(probe_path, timeout=120)

    def stop(self) -> None:
        family = tree(self.roots())
        self.server.stop()
        kill_all(family, grace=10.0)


class MapServer(Server):
    """mapserv (FastCGI x2 via spawn-fcgi) behind nginx, one tile index per layer."""

    name = "mapserver"

    def __init__(
        self,
        work: Path,
        extent: config.Box,
        layers: dict[str, list[Path]],
        workers: int = WORKERS,
    ) -> None:
        super().__init__(work, workers)
        self.extent = extent
        self.layers = layers
        self.socket = work / "mapserv.sock"
        self.fcgi_pids: list[int] = []
        self.label = f"MapServer FastCGI x{self.workers}, kept open"

    def build_indexes(self) -> dict[str, Path]:
        """``gdaltindex`` of each layer's files (a shapefile, field ``location``)."""
        return {name: gdaltindex(self.work, name, files) for name, files in self.layers.items()}

    def roots(self) -> list[int]:
        alive = [pid for pid in self.fcgi_pids if _running(pid)]
        return alive + super().roots()

    def start(self, probe_path: str) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        for folder in (self.work, *self.work.parents):  # nginx's worker runs as nobody
            if folder == Path(tempfile.gettempdir()) or folder == folder.parent:
                break
            folder.chmod(folder.stat().st_mode | 0o755)
        indexes = self.build_indexes()
        map_path = self.work / "bench.map"
        map_path.write_text(config.mapfile(self.extent, indexes))
        conf = self.work / "mapserver.conf"
        conf.write_text(config.mapserver_config(map_path))
        pidfile = self.work / "mapserv.pid"
        self.socket.unlink(missing_ok=True)
        env = {**os.environ, "MAPSERVER_CONFIG_FILE": str(conf), "MS_MAPFILE": str(map_path)}
        subprocess.run(
            ["spawn-fcgi", "-s", str(self.socket), "-M", "0666", "-F", str(self.workers)]
            + ["-P", str(pidfile), "--", shutil.which("mapserv") or "/usr/bin/mapserv"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        self.fcgi_pids = [int(x) for x in pidfile.read_text().split()]
        nginx_conf = self.work / "nginx.conf"
        nginx_conf.write_text(config.nginx_conf(self.work, self.port, self.socket))
        with self.log("nginx").open("wb") as log:
            self.procs.append(
                subprocess.Popen(
                    ["nginx", "-c", str(nginx_conf), "-p", str(self.work)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        wait_ready(self.base_url + probe_path, 30, lambda: bool(self.roots()))

    def stop(self) -> None:
        """nginx, then the FastCGI processes (mapserv finishes a request on SIGTERM and
        waits in accept(); SIGKILL after 2 s)."""
        super().stop()
        kill_all(self.fcgi_pids, grace=2.0)
        self.fcgi_pids = []


class TiTiler(Server):
    """TiTiler's MosaicJSON tiler (``titiler_app.py``) under uvicorn with two workers."""

    name = "titiler"

    def __init__(
        self,
        work: Path,
        mosaics: dict[str, Path],
        env: dict[str, str] | None = None,
        workers: int = WORKERS,
    ) -> None:
        super().__init__(work, workers)
        self.mosaics = mosaics
        self.env = {**os.environ, **(env or {})}
        self.label = f"TiTiler MosaicJSON {self.workers} workers"

    def start(self, probe_path: str) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        command = [
            str(PEERS_VENV / "bin" / "uvicorn"),
            "titiler_app:app",
            "--app-dir",
            str(Path(__file__).parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with self.log("uvicorn").open("wb") as log:
            self.procs.append(
                subprocess.Popen(
                    command, cwd=self.work, env=self.env, stdout=log, stderr=subprocess.STDOUT
                )
            )
        wait_ready(self.base_url + probe_path, 120, lambda: bool(self.roots()))


def peer_python() -> Path:
    """The peers' interpreter (``scripts/install-peers`` makes it)."""
    return PEERS_VENV / "bin" / "python"
