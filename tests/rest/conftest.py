"""A real livemosaic server on 127.0.0.1 for the REST tests, with datasets from the sample data.

Services (dataset CRS in brackets):

* ``imagery``            mosaic/rgb1-4.tif                              (UTM 18N, custom WKT)
* ``Live/multicrs``      RGB.byte (32618), TCI (32634), cogeo (3857), world.rgb (4326)  (EPSG:3857)
* ``dem``                dem/dem.tif                                    (EPSG:2056)
* ``Live/ndvi``          six MODIS NDVI JPEG 2000 files, dates from names (MODIS sinusoidal)
* ``ocean``              multidim/Arctic20_1to5Feb_2016.nc              (polar stereographic)
* ``weather``            multidim/nam…grib2                             (Lambert conformal)
* ``climate``            timeseries/bcsd_obs_1999.nc                    (EPSG:4326)
* ``overlap``            RGB.byte.tif (OBJECTID 1) + its four quarters with halved values (2..5)
* ``stopped``            like imagery, configured STOPPED
* ``imageonly``          dem with capabilities "Image" only (no Catalog)
* ``vanishing``          one raster whose file was deleted after ingest

``dem`` allows only NorthWest, Center, LockRaster and None; ``ocean`` has maxRecordCount 100.
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
import numpy as np
import pytest
import rasterio
import uvicorn
from affine import Affine
from rasterio.windows import Window

from livemosaic.app import AppContext, build_context, create_app
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.settings import Settings
from tests.rest.helpers import LiveServer

ROOT = "arcgis"
BODY_LIMIT = 256 * 1024
NDVI_PATTERN = r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"

# quarter k covers rows/cols [r0:r1, c0:c1] of RGB.byte.tif (791 x 718)
QUARTERS = {
    "q_nw": (0, 359, 0, 395),
    "q_ne": (0, 359, 395, 791),
    "q_sw": (359, 718, 0, 395),
    "q_se": (359, 718, 395, 791),
}


def write_quarters(src_path: Path, out_dir: Path) -> dict[str, Path]:
    """The four quarters of a raster, valid values halved (at least 1) so they differ from it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    with rasterio.open(src_path) as src:
        for name, (r0, r1, c0, c1) in QUARTERS.items():
            window = Window(c0, r0, c1 - c0, r1 - r0)
            data = src.read(window=window)
            halved = np.where(data == 0, 0, np.maximum(data // 2, 1)).astype(data.dtype)
            profile = src.profile.copy()
            profile.update(
                width=c1 - c0, height=r1 - r0, transform=src.transform @ Affine.translation(c0, r0)
            )
            path = out_dir / f"{name}.tif"
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(halved)
            paths[name] = path
    return paths


def _publish(ctx: AppContext, name: str, dataset: str, **kwargs: Any) -> None:
    ctx.publisher.publish(ServiceDefinition(name=name, dataset=dataset, **kwargs))


def populate(
    ctx: AppContext, data: Path, quarters: dict[str, Path], allowed: list[Path], vanish: Path
) -> None:
    """Create the datasets and services listed in the module docstring."""
    ing = Ingestor(ctx.catalog, ctx.source, allowed)

    def add(dataset: str, paths: list[Path], **create: Any) -> None:
        ing.create_dataset(dataset, **create)
        report = ing.add_paths(dataset, paths)
        assert not report.rejected, report.rejected
        assert report.added > 0, dataset

    add("imagery", sorted((data / "mosaic").glob("rgb*.tif")))
    add(
        "multicrs",
        [
            data / "imagery/RGB.byte.tif",
            data / "imagery/TCI.tif",
            data / "imagery/cogeo.tif",
            data / "crs/world.rgb.tif",
        ],
        crs="EPSG:3857",
    )
    add("dem", [data / "dem/dem.tif"])
    add("ndvi", [data / "timeseries/modis_ndvi"], time_pattern=NDVI_PATTERN)
    add("ocean", [data / "multidim/Arctic20_1to5Feb_2016.nc"])
    add("weather", [data / "multidim/nam.t00z.awp21100.tm00.grib2"])
    add("climate", [data / "timeseries/bcsd_obs_1999.nc"])
    add("overlap", [data / "imagery/RGB.byte.tif"])
    report = ing.add_paths("overlap", [quarters[k] for k in QUARTERS])
    assert report.added == 4, report
    vanish.mkdir(parents=True, exist_ok=True)
    gone = vanish / "gone.tif"
    shutil.copyfile(data / "mosaic/rgb1.tif", gone)
    add("vanishing", [gone])

    _publish(ctx, "imagery", "imagery")
    _publish(ctx, "multicrs", "multicrs", folder="Live")
    _publish(
        ctx,
        "dem",
        "dem",
        properties={
            "defaultResamplingMethod": "NearestNeighbor",
            "allowedMosaicMethods": "NorthWest,Center,LockRaster,None",
        },
    )
    _publish(ctx, "ndvi", "ndvi", folder="Live", properties={"hasLiveData": "true"})
    _publish(ctx, "ocean", "ocean", properties={"maxRecordCount": "100"})
    _publish(ctx, "weather", "weather")
    _publish(ctx, "climate", "climate")
    _publish(ctx, "overlap", "overlap")
    _publish(ctx, "stopped", "imagery", configured_state="STOPPED")
    _publish(ctx, "imageonly", "dem", capabilities="Image")
    _publish(ctx, "vanishing", "vanishing")
    gone.unlink()  # the catalog still lists it: requests must fail cleanly


@pytest.fixture(scope="session")
def live(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running server (uvicorn in a thread, real sockets) for the whole test session."""
    work = tmp_path_factory.mktemp("rest")
    quarters = write_quarters(shared_data / "imagery/RGB.byte.tif", work / "quarters")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    settings = Settings(
        data_dir=work / "data",
        data_folders=[shared_data, work / "quarters", work / "vanish"],
        root=ROOT,
        host="127.0.0.1",
        port=port,
        max_request_body_bytes=BODY_LIMIT,
        read_threads=4,
    )
    ctx = build_context(settings)
    populate(ctx, shared_data, quarters, list(settings.data_folders), work / "vanish")
    app = create_app(settings, ctx)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", http="h11")
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
        yield LiveServer(base, f"{base}/{ROOT}", ctx, settings, shared_data, quarters)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for the live server."""
    with httpx.Client(base_url=live.base, timeout=120) as c:
        yield c
