"""Helpers for the security, GP and admin tests: servers with users, tokens, jobs.

``build_site`` makes a data folder with datasets, services and one user per role;
``running`` serves an AppContext with uvicorn on 127.0.0.1 in a thread (real sockets);
``ServeProcess`` runs ``livemosaic serve`` as a real subprocess (for restarts and several
processes on one catalog).

Services of a site (dataset in brackets):

* ``pub``             public                          (tiles: mosaic/rgb1-4.tif)
* ``Private/sec``     secured, any signed-in user     (tiles)
* ``Private/granted`` secured, allowedUsers=pub1      (tiles)
* ``Live/live``       public, hasLiveData             (live: rgb1.tif only at first)
* ``Live/ndvi``       public, hasLiveData             (ndvi: the first three NDVI dates)
* ``static``          public, hasLiveData false       (tiles)
* ``halted``          hasLiveData, configured STOPPED (tiles)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from livemosaic.app import AppContext, build_context, create_app
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.security import Role, User, hash_password
from livemosaic.settings import Settings

ROOT = "/arcgis"
TOKENS = f"{ROOT}/tokens/generateToken"
GP = f"{ROOT}/rest/services/System/PublishingTools/GPServer"
TASK = f"{GP}/Refresh%20Service"
FORBIDDEN = "You do not have permissions to access this resource or perform this operation."
NDVI_PATTERN = r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
BIN = Path(sys.executable).parent / "livemosaic"

PASSWORDS = {
    "viewer": "viewer-password-1",
    "pub1": "pub1-password-1",
    "pub2": "pub2-password-1",
    "admin": "admin-password-1",
}
ROLES: dict[str, Role] = {
    "viewer": "user",
    "pub1": "publisher",
    "pub2": "publisher",
    "admin": "administrator",
}
TERMINAL = {"esriJobSucceeded", "esriJobFailed", "esriJobCancelled", "esriJobTimedOut"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiles(data: Path) -> list[Path]:
    """The four overlapping tiles of mosaic/."""
    return sorted((data / "mosaic").glob("rgb*.tif"))


def ndvi(data: Path) -> list[Path]:
    """The six NDVI dates, oldest first."""
    return sorted((data / "timeseries" / "modis_ndvi").glob("*.jp2"))


def add_users(ctx_users: Any) -> None:
    """One user per role (plus a second publisher), passwords from PASSWORDS."""
    for name, password in PASSWORDS.items():
        ctx_users.add_user(User(name, ROLES[name], hash_password(password)))


def populate(ctx: AppContext, data: Path) -> None:
    """Datasets and services listed in the module docstring, and the users."""
    ing = Ingestor(ctx.catalog, ctx.source, [data])
    ing.create_dataset("tiles")
    assert ing.add_paths("tiles", tiles(data)).added == 4
    ing.create_dataset("live")
    assert ing.add_paths("live", tiles(data)[:1]).added == 1
    ing.create_dataset("ndvi", time_pattern=NDVI_PATTERN)
    assert ing.add_paths("ndvi", ndvi(data)[:3]).added == 3

    def publish(name: str, dataset: str, **kwargs: Any) -> None:
        ctx.publisher.publish(ServiceDefinition(name=name, dataset=dataset, **kwargs))

    live = {"hasLiveData": "true"}
    publish("pub", "tiles")
    publish("sec", "tiles", folder="Private", private=True)
    publish("granted", "tiles", folder="Private", private=True, properties={"allowedUsers": "pub1"})
    publish("live", "live", folder="Live", properties=live)
    publish("ndvi", "ndvi", folder="Live", properties=live)
    publish("static", "tiles")
    publish("halted", "tiles", configured_state="STOPPED", properties=live)
    add_users(ctx.users)


def site_settings(work: Path, data: Path, **overrides: Any) -> Settings:
    """Settings for a test server on a free port."""
    values: dict[str, Any] = {
        "data_dir": work / "data",
        "data_folders": [data],
        "host": "127.0.0.1",
        "port": free_port(),
        "read_threads": 4,
    }
    values.update(overrides)
    return Settings(**values)


def build_site(work: Path, data: Path, **overrides: Any) -> AppContext:
    """A context over a new data folder holding the site of the module docstring."""
    ctx = build_context(site_settings(work, data, **overrides))
    populate(ctx, data)
    return ctx


@dataclass
class Running:
    """A server running in this process."""

    ctx: AppContext
    base: str  # http://127.0.0.1:port
    client: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        """A (cached) token of a test user, from generateToken."""
        if user not in self.tokens:
            self.tokens[user] = sign_in(self.client, user)
        return self.tokens[user]

    def auth(self, user: str | None) -> dict[str, str]:
        """Headers carrying a user's token (none for anonymous)."""
        return {} if user is None else bearer(self.token(user))


@contextlib.contextmanager
def running(ctx: AppContext) -> Iterator[Running]:
    """Serve ``ctx`` with uvicorn on 127.0.0.1 in a thread; stop it afterwards."""
    settings = ctx.settings
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    app = create_app(settings, ctx)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="none", http="h11", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            yield Running(ctx, base, client)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def bearer(token: str) -> dict[str, str]:
    """The header py sends its token in."""
    return {"X-Esri-Authorization": f"Bearer {token}"}


def sign_in(http: httpx.Client, user: str, path: str = TOKENS, **form: str) -> str:
    """A token for a test user (fails the test when none is issued)."""
    r = http.post(path, data={"username": user, "password": PASSWORDS[user], "f": "json", **form})
    body = r.json()
    assert "token" in body, body
    return str(body["token"])


def submit(client: httpx.Client, headers: dict[str, str], **inputs: str) -> dict[str, Any]:
    """POST submitJob (f=json) and return the JSON answer."""
    r = client.post(f"{TASK}/submitJob", data={"f": "json", **inputs}, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_job(
    client: httpx.Client, headers: dict[str, str], job_id: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Poll a job until it reaches a terminal status; return its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(
            f"{TASK}/jobs/{job_id}", params={"f": "json", "returnMessages": "True"}, headers=headers
        )
        body = dict(r.json())
        assert "error" not in body, body
        if body["jobStatus"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, f"job {job_id} still {body['jobStatus']}"
        time.sleep(0.02)


def refresh(
    client: httpx.Client, headers: dict[str, str], name: str, folder: str = "", **extra: str
) -> dict[str, Any]:
    """Submit a Refresh Service job for an image service and wait for it."""
    job = submit(
        client, headers, serviceName=name, serviceType="ImageServer", serviceFolder=folder, **extra
    )
    assert job.get("jobStatus") == "esriJobSubmitted", job
    return wait_job(client, headers, str(job["jobId"]))


def messages(job: dict[str, Any]) -> list[str]:
    """The descriptions of a job's messages."""
    return [m["description"] for m in job.get("messages", [])]


# -- subprocess servers ------------------------------------------------------------------
class ServeProcess:
    """``livemosaic serve`` in a subprocess on one data folder."""

    def __init__(
        self,
        data_dir: Path,
        data_folder: Path,
        log: Path,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = dict(os.environ)
        for key in [k for k in environ if k.startswith("LIVEMOSAIC_")]:
            environ.pop(key)
        environ.update(env or {})  # settings of this test (LIVEMOSAIC_…)
        self.environ = environ
        self.data_dir = data_dir
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [str(BIN), "--data-dir", str(data_dir), "--data-folder", str(data_folder), "serve",
             "--port", str(self.port), "--log-level", "warning", *extra],
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.log_path = log

    def wait_ready(self, timeout: float = 60.0, scheme: str = "http") -> None:
        """Wait until the server answers rest/info."""
        deadline = time.monotonic() + timeout
        url = f"{scheme}://127.0.0.1:{self.port}{ROOT}/rest/info?f=json"
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(url, timeout=2, verify=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: the process dies at once, whatever it was doing."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        """Terminate politely (lifespan shutdown), kill if it hangs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()


def prepare_site(work: Path, data: Path, **overrides: Any) -> Path:
    """A data folder holding the site (built here, then closed); returns the data dir."""
    ctx = build_site(work, data, **overrides)
    ctx.close()
    return ctx.settings.data_dir
