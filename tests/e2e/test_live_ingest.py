"""End to end (issue 4 §4): files dropped into a running server's watched folders become
visible within 2 seconds — in exportImage, in the service info, and over the WebSocket.

``livemosaic serve --watch rules.toml`` runs as a real subprocess on 127.0.0.1 (uvicorn,
SQLite catalog) watching three folders, each feeding a live service:

* ``Live/cog``     — a Web Mercator mosaic; a COG (``imagery/cogeo.tif``) is dropped east of
  the tile it starts with: the extent grows;
* ``Live/climate`` — NetCDF (``timeseries/bcsd_obs_1999.nc`` at first); a NetCDF with three
  new monthly steps of ``tas`` (2000, and further east) is dropped: time extent and extent grow;
* ``Live/ndvi``    — MODIS NDVI, date in the file name; the last three dates are dropped one
  after another: the time extent grows with each.

Every file is written as ``name.part`` and renamed when complete, and the clock starts at the
rename. The watcher's settle time is 0.3 s and its batch window 0.1 s. For each file the test
records when exportImage first shows its pixels, when the service info first covers it and
when a WebSocket client subscribed to the service receives a ``serviceRefreshed`` message
covering it; each must come within 2 s.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.shutil import copy as rio_copy
from websockets.sync.client import connect

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry
from tests.liveserver import free_socket

BIN = Path(sys.executable).parent / "livemosaic"
LIMIT = 2.0  # seconds from rename to visible/notified (issue 4 §4)
PATIENCE = 20.0  # how long to keep looking before giving up (to report late figures)
NDVI_PATTERN = r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
CF_UNITS = "days since 1950-01-01 00:00:00"
NEW_MONTHS = (dt.date(2000, 1, 15), dt.date(2000, 2, 15), dt.date(2000, 3, 15))
RULES = """
[defaults]
settle_seconds = 0.3
batch_window_seconds = 0.1
rescan_seconds = 60

[[watch]]
folder = "in/cog"
dataset = "cog"
service = "Live/cog"

[[watch]]
folder = "in/climate"
dataset = "climate"
service = "Live/climate"

[[watch]]
folder = "in/ndvi"
dataset = "ndvi"
service = "Live/ndvi"
"""


def epoch_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def write_shifted(source: Path, target: Path, dx_pixels: float, driver: str = "GTiff") -> None:
    """A copy of ``source`` moved ``dx_pixels`` columns east (``COG`` writes a COG)."""
    with rasterio.open(source) as src:
        skip = ("blockxsize", "blockysize", "photometric", "compress", "interleave")
        profile = {k: v for k, v in src.profile.items() if k not in skip}
        profile.update(
            driver="GTiff",
            transform=src.transform * Affine.translation(dx_pixels, 0),
            compress="deflate",
            tiled=True,
        )
        tmp = target.with_name(target.name + ".tmp.tif")
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(src.read())
    if driver == "GTiff":
        tmp.rename(target)
    else:
        rio_copy(tmp, target, driver=driver)
        tmp.unlink()


def write_new_months(source: Path, target: Path, shift_degrees: float) -> None:
    """A CF NetCDF of ``tas`` for NEW_MONTHS on the grid of ``source`` moved east."""
    with rasterio.open(f"netcdf:{source}:tas") as src:
        data = src.read(list(range(1, len(NEW_MONTHS) + 1)))
        transform = src.transform * Affine.translation(shift_degrees / src.transform.a, 0)
        nodata = src.nodata
    days = [(d - dt.date(1950, 1, 1)).days for d in NEW_MONTHS]
    tmp = target.with_name(target.name + ".tmp.tif")
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": len(NEW_MONTHS),
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data.astype("float32"))
        dst.update_tags(
            NETCDF_DIM_EXTRA="{time}",
            NETCDF_DIM_time_DEF=f"{{{len(days)},6}}",
            NETCDF_DIM_time_VALUES="{" + ",".join(map(str, days)) + "}",
            **{"time#units": CF_UNITS, "time#standard_name": "time", "time#calendar": "standard"},
        )
        for band in range(1, len(NEW_MONTHS) + 1):
            dst.update_tags(band, NETCDF_VARNAME="tas")
    rio_copy(tmp, target, driver="netCDF")
    tmp.unlink()


def deliver(write: Callable[[Path], None], target: Path) -> float:
    """Write ``target`` as ``target.part``, then rename it; the monotonic time of the rename."""
    part = target.with_name(target.name + ".part")
    write(part)
    os.rename(part, target)
    return time.monotonic()


@dataclass
class Notifications:
    """A WebSocket client, in a thread, recording every message with its arrival time."""

    url: str
    services: list[str]
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        try:
            with connect(self.url, proxy=None, open_timeout=10) as ws:
                ws.send(json.dumps({"op": "subscribe", "services": self.services}))
                while not self.stop.is_set():
                    try:
                        text = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    message = json.loads(text)
                    with self.lock:
                        self.messages.append((time.monotonic(), message))
                    if message.get("event") == "subscribed":
                        self.ready.set()
        except BaseException as exc:  # reported by the test
            self.error.append(exc)
            self.ready.set()

    def first(
        self,
        accept: Callable[[dict[str, Any]], bool],
        since: float,
        event: str = "serviceRefreshed",
    ) -> float | None:
        with self.lock:
            for at, message in self.messages:
                if at >= since and message.get("event") == event and accept(message):
                    return at
        return None


@dataclass
class Server:
    """The server subprocess and what the test knows about it."""

    root: str  # http://127.0.0.1:port/arcgis
    data: Path
    http: httpx.Client
    ws: Notifications

    def info(self, service: str) -> dict[str, Any]:
        r = self.http.get(f"{self.root}/rest/services/{service}/ImageServer", params={"f": "json"})
        return dict(r.json())

    def export(self, service: str, bbox: tuple[float, ...], **params: str) -> np.ndarray:
        """The alpha band of a 64×64 PNG of ``bbox`` (in the service's SR)."""
        r = self.http.get(
            f"{self.root}/rest/services/{service}/ImageServer/exportImage",
            params={
                "bbox": ",".join(map(str, bbox)),
                "size": "64,64",
                "format": "png32",
                "f": "image",
                **params,
            },
        )
        assert r.headers["content-type"].startswith("image/png"), r.text[:300]
        return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))[:, :, 3]


def populate(work: Path, shared: Path) -> None:
    """Datasets, first files and the three live services, before the server starts."""
    data = work / "in"
    for sub in ("cog", "climate", "ndvi"):
        (data / sub).mkdir(parents=True)
    write_shifted(shared / "imagery/cogeo.tif", data / "cog/west.tif", -1024)
    shutil.copyfile(shared / "timeseries/bcsd_obs_1999.nc", data / "climate/obs_1999.nc")
    dates = sorted((shared / "timeseries/modis_ndvi").glob("*.jp2"))
    for path in dates[:3]:
        shutil.copyfile(path, data / "ndvi" / path.name)
    stores = open_stores(f"sqlite:///{work / 'data' / 'catalog.db'}")
    try:
        ing = Ingestor(stores.catalog, RasterioSource([data]), [data])
        ing.create_dataset("cog", "EPSG:3857")
        assert ing.add_paths("cog", [data / "cog"]).added == 1
        ing.create_dataset("climate", "EPSG:4326")
        assert ing.add_paths("climate", [data / "climate"]).added == 24
        ing.create_dataset("ndvi", time_pattern=NDVI_PATTERN)
        assert ing.add_paths("ndvi", [data / "ndvi"]).added == 3
        publisher = Publisher(stores.catalog, ServiceRegistry(), RasterioProjector())
        live = {"hasLiveData": "true"}
        for name in ("cog", "climate", "ndvi"):
            publisher.publish(ServiceDefinition(name, name, folder="Live", properties=live))
    finally:
        stores.close()


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("live_ingest")
    populate(work, shared_data)
    (work / "rules.toml").write_text(RULES)
    sock = free_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMOSAIC_")}
    log_path = work / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                str(BIN),
                "--data-dir",
                str(work / "data"),
                "--data-folder",
                str(work / "in"),
                "serve",
                "--watch",
                str(work / "rules.toml"),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}/arcgis"
    ws = Notifications(
        f"ws://127.0.0.1:{port}/arcgis/livemosaic/ws",
        ["Live/cog.ImageServer", "Live/climate.ImageServer", "Live/ndvi.ImageServer"],
    )
    thread = threading.Thread(target=ws.run, daemon=True)
    try:
        with httpx.Client(trust_env=False, timeout=30) as http:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                try:
                    if (
                        "name"
                        in http.get(f"{root}/rest/services/Live/cog/ImageServer?f=json").json()
                    ):
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            thread.start()
            assert ws.ready.wait(15) and not ws.error, ws.error
            yield Server(root, work / "in", http, ws)
    finally:
        ws.stop.set()
        thread.join(timeout=10)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0 or proc.returncode < 0, log_path.read_text()


@dataclass
class Seen:
    """Seconds from the rename to each observation (None: not seen in PATIENCE)."""

    export: float | None = None
    info: float | None = None
    message: float | None = None

    def check(self, what: str) -> None:
        figures = {"exportImage": self.export, "service info": self.info, "WebSocket": self.message}
        print(
            f"{what}: "
            + ", ".join(f"{k} {v if v is None else round(v, 3)} s" for k, v in figures.items())
        )
        late = {k: v for k, v in figures.items() if v is None or v > LIMIT}
        assert not late, f"{what}: later than {LIMIT} s after the rename: {figures}"


def watch_for(
    server: Server,
    renamed: float,
    visible: Callable[[], bool],
    covered: Callable[[dict[str, Any]], bool],
    service: str,
    message: Callable[[dict[str, Any]], bool],
) -> Seen:
    """Poll until the file is visible, the service info covers it and a message came."""
    seen = Seen()
    while time.monotonic() - renamed < PATIENCE:
        if seen.export is None and visible():
            seen.export = time.monotonic() - renamed
        if seen.info is None and covered(server.info(service)):
            seen.info = time.monotonic() - renamed
        if seen.message is None:
            at = server.ws.first(message, renamed)
            seen.message = None if at is None else at - renamed
        if None not in (seen.export, seen.info, seen.message):
            break
        time.sleep(0.03)
    return seen


def test_a_cog_extends_the_mosaic(server: Server, shared_data: Path) -> None:
    before = server.info("Live/cog")["extent"]
    with rasterio.open(shared_data / "imagery/cogeo.tif") as src:
        bounds = tuple(src.bounds)
    assert bounds[2] > before["xmax"] + 100  # the new COG lies east of the mosaic
    assert not server.export("Live/cog", bounds).any()  # nothing there yet
    target = server.data / "cog/cogeo.tif"
    renamed = deliver(lambda part: shutil.copyfile(shared_data / "imagery/cogeo.tif", part), target)
    seen = watch_for(
        server,
        renamed,
        lambda: bool(server.export("Live/cog", bounds).mean() > 128),
        lambda info: info["extent"]["xmax"] >= bounds[2] - 1,
        "Live/cog",
        lambda m: m["service"] == "Live/cog.ImageServer" and m["extent"]["xmax"] >= bounds[2] - 1,
    )
    seen.check("COG")
    after = server.info("Live/cog")["extent"]
    assert after["xmin"] == pytest.approx(before["xmin"])


def test_a_netcdf_with_new_time_steps(server: Server, shared_data: Path, tmp_path: Path) -> None:
    before = server.info("Live/climate")
    old_end = before["timeInfo"]["timeExtent"][1]
    new_end = epoch_ms(NEW_MONTHS[-1])
    assert new_end > old_end
    east = before["extent"]["xmax"] + 2.0  # the new grid lies 2 degrees further east
    bbox = (east - 1.0, before["extent"]["ymin"] + 1, east - 0.2, before["extent"]["ymax"] - 1)
    slice_ = {"variableName": "tas", "dimensionName": "StdTime", "values": [new_end]}
    query = {"mosaicRule": json.dumps({"multidimensionalDefinition": [slice_]})}
    assert not server.export("Live/climate", bbox, **query).any()
    staged = tmp_path / "tas_2000.nc"  # GDAL writes NetCDF in several passes: stage it
    write_new_months(shared_data / "timeseries/bcsd_obs_1999.nc", staged, 2.0)
    target = server.data / "climate/tas_2000.nc"
    renamed = deliver(lambda part: shutil.copyfile(staged, part), target)
    seen = watch_for(
        server,
        renamed,
        lambda: bool(server.export("Live/climate", bbox, **query).any()),
        lambda info: (
            info["timeInfo"]["timeExtent"][1] >= new_end and info["extent"]["xmax"] >= east - 0.01
        ),
        "Live/climate",
        lambda m: m["service"] == "Live/climate.ImageServer" and m["timeExtent"][1] >= new_end,
    )
    seen.check("NetCDF")
    info = server.info("Live/climate")
    assert info["timeInfo"]["timeExtent"][0] == before["timeInfo"]["timeExtent"][0]


def test_a_series_of_dated_files(server: Server, shared_data: Path) -> None:
    dates = sorted((shared_data / "timeseries/modis_ndvi").glob("*.jp2"))[3:]
    assert len(dates) == 3
    info = server.info("Live/ndvi")
    ext = info["extent"]
    bbox = (ext["xmin"], ext["ymin"], ext["xmax"], ext["ymax"])
    renames: list[tuple[Path, int, float]] = []
    for path in dates:
        when = epoch_ms(dt.date.fromisoformat(path.stem.rsplit("_", 1)[1]))
        assert when > info["timeInfo"]["timeExtent"][1]
        assert not server.export("Live/ndvi", bbox, time=str(when)).any()
        target = server.data / "ndvi" / path.name
        renames.append((path, when, deliver(lambda part, p=path: shutil.copyfile(p, part), target)))
        time.sleep(0.25)  # a series: one file after another
    for path, when, renamed in renames:
        seen = watch_for(
            server,
            renamed,
            lambda when=when: bool(server.export("Live/ndvi", bbox, time=str(when)).any()),
            lambda info, when=when: info["timeInfo"]["timeExtent"][1] >= when,
            "Live/ndvi",
            lambda m, when=when: (
                m["service"] == "Live/ndvi.ImageServer" and m["timeExtent"][1] >= when
            ),
        )
        seen.check(path.name)
    final = server.info("Live/ndvi")["timeInfo"]["timeExtent"]
    assert final[1] == renames[-1][1]


def test_a_file_inside_the_extent_is_drawn_and_announced_without_a_refresh(
    server: Server, shared_data: Path
) -> None:
    """Same footprint as an item already there: no summary change, so no refresh, but the
    new item is counted at once and subscribers get ``itemsChanged`` to redraw."""
    source = shared_data / "imagery/cogeo.tif"
    first = deliver(lambda part: shutil.copyfile(source, part), server.data / "cog/inside_a.tif")
    with rasterio.open(source) as src:
        right = src.bounds.right
    deadline = first + PATIENCE
    while time.monotonic() < deadline:
        if server.info("Live/cog")["extent"]["xmax"] >= right - 1:
            break
        time.sleep(0.05)

    def count() -> int:
        r = server.http.get(
            f"{server.root}/rest/services/Live/cog/ImageServer/query",
            params={"where": "1=1", "returnCountOnly": "true", "f": "json"},
        )
        return int(r.json()["count"])

    time.sleep(0.5)  # let the first file's batch and refresh finish
    version = server.info("Live/cog")
    items_before = count()
    renamed = deliver(lambda part: shutil.copyfile(source, part), server.data / "cog/inside_b.tif")
    announced = counted = None
    while time.monotonic() - renamed < PATIENCE and None in (announced, counted):
        if counted is None and count() == items_before + 1:
            counted = time.monotonic() - renamed
        if announced is None:
            at = server.ws.first(
                lambda m: m["service"] == "Live/cog.ImageServer" and m["itemsAdded"] >= 1,
                renamed,
                event="itemsChanged",
            )
            announced = None if at is None else at - renamed
        time.sleep(0.03)
    print(f"inside the extent: counted {counted} s, itemsChanged {announced} s")
    assert counted is not None and counted <= LIMIT
    assert announced is not None and announced <= LIMIT
    assert server.info("Live/cog")["extent"] == version["extent"]  # nothing to refresh
