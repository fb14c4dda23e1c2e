"""Memory and time a request may take, over HTTP against a real server.

The servers serve ``stack``: twelve copies of the sample RGB.byte.tif on the same place, so a
Mean export reads (and warps) every one of them: a 1000 x 1000 image takes seconds of real
work. Settings are small on purpose: one 1400 x 1400 Mean export fills most of the memory budget.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import RasterItem, ServiceDefinition
from livemosaic.core.ports import PixelBlock, RasterSource, ReadRequest
from tests.liveserver import LiveServer, add_dataset, make_server

COPIES = 12
SVC = "/rest/services/stack/ImageServer"
MEAN = '{"mosaicMethod":"esriMosaicNone","mosaicOperation":"MT_MEAN"}'


class CountingSource:
    """The server's real raster source, counting the item reads it serves."""

    def __init__(self, inner: RasterSource) -> None:
        self.inner = inner
        self.reads = 0
        self.lock = threading.Lock()

    def read(self, item: RasterItem, request: ReadRequest) -> PixelBlock | None:
        with self.lock:
            self.reads += 1
        return self.inner.read(item, request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def copies(shared_data: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(COPIES):
        shutil.copyfile(shared_data / "imagery/RGB.byte.tif", folder / f"copy{i:02d}.tif")
    return folder


def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    add_dataset(ing, "stack", sorted(data.glob("copy*.tif")))
    ctx.publisher.publish(ServiceDefinition(name="stack", dataset="stack"))


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("budget")
    data = copies(shared_data, work / "rasters")
    with make_server(
        work,
        data,
        populate,
        request_memory_mb=400,
        memory_budget_mb=400,
        admission_wait_seconds=0.5,
        busy_retry_after_seconds=3,
        trim_after_mb=1,
    ) as live:
        live.ctx.exporter.source = CountingSource(live.ctx.exporter.source)
        yield live


def extent(live: LiveServer) -> str:
    snap = live.ctx.registry.find("", "stack")
    assert snap is not None and snap.summary.extent is not None
    e = snap.summary.extent
    return f"{e.xmin},{e.ymin},{e.xmax},{e.ymax}"


def export_params(live: LiveServer, size: int, **extra: str) -> dict[str, str]:
    return {"bbox": extent(live), "size": f"{size},{size}", "mosaicRule": MEAN, "format": "png",
            "f": "image", **extra}  # fmt: skip


def reads(live: LiveServer) -> int:
    source = live.ctx.exporter.source
    assert isinstance(source, CountingSource)
    return source.reads


def wait_for(condition: Any, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_a_request_over_the_memory_budget_is_a_clear_400(server: LiveServer) -> None:
    before = reads(server)
    params = export_params(server, 2000, f="json")
    with httpx.Client(timeout=60) as client:
        r = client.get(server.root + SVC + "/exportImage", params=params)
    assert r.status_code == 200  # ArcGIS status policy: the code is in the envelope
    error = r.json()["error"]
    assert error["code"] == 400
    text = " ".join(error["details"])
    assert "2000x2000 pixels of 3 band(s)" in text and "limit per request is 400 MiB" in text
    assert "smaller size" in text and "LIVEMOSAIC_REQUEST_MEMORY_MB" in text
    assert reads(server) == before  # refused before any read
    assert server.ctx.gate.in_use == 0


def test_a_saturated_gate_answers_503_with_retry_after(server: LiveServer) -> None:
    gate = server.ctx.gate
    url = server.root + SVC + "/exportImage"
    holder: dict[str, httpx.Response] = {}

    def hold() -> None:
        with httpx.Client(timeout=120) as client:
            # 1400 x 1400 Mean: about 376 MiB of the 400 MiB budget, seconds of work
            holder["r"] = client.get(url, params=export_params(server, 1400))

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert wait_for(lambda: gate.in_use > 0)
        with httpx.Client(timeout=60) as client:
            started = time.monotonic()
            r = client.get(url, params=export_params(server, 1000, f="json"))
            waited = time.monotonic() - started
        assert gate.running == 1, "the first export must still hold the gate"
        assert r.status_code == 503  # always a real 503, whatever the status policy
        assert r.headers["retry-after"] == "3"
        error = r.json()["error"]
        assert error["code"] == 503 and "busy" in " ".join(error["details"])
        assert waited < 30
    finally:
        thread.join(timeout=120)
    assert holder["r"].status_code == 200
    assert holder["r"].headers["content-type"] == "image/png"
    assert wait_for(lambda: gate.in_use == 0, 5)


def test_a_client_that_disconnects_has_its_work_cancelled(server: LiveServer) -> None:
    gate = server.ctx.gate
    before = reads(server)
    query = httpx.QueryParams(export_params(server, 1000))
    port = int(server.base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(
            f"GET /arcgis{SVC}/exportImage?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        )
        assert wait_for(lambda: gate.in_use > 0 and reads(server) > before)
    finally:
        sock.close()
    closed = time.monotonic()
    assert wait_for(lambda: gate.in_use == 0 and gate.running == 0, 20)
    released = time.monotonic() - closed
    read = reads(server) - before
    assert read < COPIES, f"all {read} items were read: the work was not stopped"
    assert released < 20


@pytest.fixture(scope="module")
def hurried(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("deadline")
    data = copies(shared_data, work / "rasters")
    with make_server(work, data, populate, request_timeout_seconds=1.0) as live:
        live.ctx.exporter.source = CountingSource(live.ctx.exporter.source)
        yield live


def test_work_past_its_deadline_is_stopped_and_answered_504(hurried: LiveServer) -> None:
    with httpx.Client(timeout=60) as client:
        started = time.monotonic()
        r = client.get(
            hurried.root + SVC + "/exportImage", params=export_params(hurried, 1500, f="json")
        )
        elapsed = time.monotonic() - started
    assert r.status_code == 200
    error = r.json()["error"]
    assert error["code"] == 504
    assert "limit of 1 seconds" in error["details"][0]
    assert "LIVEMOSAIC_REQUEST_TIMEOUT_SECONDS" in " ".join(error["details"])
    assert elapsed < 30
    gate = hurried.ctx.gate
    assert wait_for(lambda: gate.in_use == 0, 20)
    assert reads(hurried) < COPIES


def test_the_budget_settings() -> None:
    from livemosaic.settings import MIB, Settings, physical_memory_bytes

    assert Settings(memory_budget_mb=2048).memory_budget_bytes == 2048 * MIB
    auto = Settings(memory_budget_mb=0, request_memory_mb=1)
    assert auto.memory_budget_bytes == physical_memory_bytes() // 4
    # never below what one request may take: that request could never run
    assert Settings(memory_budget_mb=100, request_memory_mb=500).memory_budget_bytes == 500 * MIB
