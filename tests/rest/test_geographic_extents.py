"""Global grids whose cell edges pass the poles are published with valid geographic extents.

A coarse global grid is written with its cell edges: a 90-degree GRIB grid spans latitudes
-135..135, a 2.5-degree GFS grid -91.25..91.25 with longitudes 0..360 (-1.25..358.75).
Clients that compute their view from such an extent get NaN. The service extents, query
extents and footprints and item extents of a dataset in a geographic CRS are published
clamped to latitudes within ±90 and longitudes of one Earth (core.geographic); the files
are generated here with GDAL (GRIB2 and NetCDF), as such models write them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import rasterio

from livemosaic.app import build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from tests.rest.grids import GRIDS, write_grid
from tests.rest.helpers import read_tiff
from tests.rest.secure import running, site_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    work = tmp_path_factory.mktemp("geographic")
    grids = work / "grids"
    grids.mkdir()
    ctx = build_context(site_settings(work, grids))
    ing = Ingestor(ctx.catalog, ctx.source, [grids])
    for name, (driver, filename, *shape) in GRIDS.items():
        path = grids / filename
        write_grid(path, driver, *shape)
        with rasterio.open(path) as ds:  # the file really reaches past the poles
            assert ds.bounds.top > 90 and ds.bounds.bottom < -90, ds.bounds
        ing.create_dataset(name, "EPSG:4326")
        report = ing.add_paths(name, [path])
        assert report.added >= 1, report
        ctx.publisher.publish(ServiceDefinition(name=name, dataset=name))
    try:
        with running(ctx) as srv:
            yield srv.client
    finally:
        ctx.close()


def get(client: httpx.Client, path: str, **params: Any) -> Any:
    r = client.post(f"/arcgis/rest/services/{path}", data={"f": "json", **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "error" not in body, body
    return body


def assert_valid(extent: dict[str, Any]) -> None:
    values = [extent[k] for k in ("xmin", "ymin", "xmax", "ymax")]
    assert all(isinstance(v, float | int) and math.isfinite(v) for v in values), extent
    assert -90 <= extent["ymin"] < extent["ymax"] <= 90, extent
    assert -180 <= extent["xmin"] < extent["xmax"] <= 360, extent
    assert extent["xmax"] - extent["xmin"] <= 360, extent


# the longitudes each service publishes: GDAL reads the GRIB grid as -225..135 (what lies west
# of -180 cannot be drawn there: cut off), the NetCDF grid as -1.25..358.75 (0..360: kept)
LONGITUDES = {"g90": (-180.0, 135.0), "gfs": (-1.25, 358.75)}


@pytest.mark.parametrize("name", GRIDS)
def test_service_extents_are_valid(server: httpx.Client, name: str) -> None:
    info = get(server, f"{name}/ImageServer")
    for key in ("extent", "initialExtent", "fullExtent"):
        assert_valid(info[key])
    assert (info["extent"]["ymin"], info["extent"]["ymax"]) == (-90, 90)
    assert (info["extent"]["xmin"], info["extent"]["xmax"]) == LONGITUDES[name]


@pytest.mark.parametrize("name", GRIDS)
def test_the_published_extent_is_drawn_everywhere(server: httpx.Client, name: str) -> None:
    """What a client draws first, the service extent, is covered by data (no blank strip)."""
    e = get(server, f"{name}/ImageServer")["extent"]
    r = server.get(f"/arcgis/rest/services/{name}/ImageServer/exportImage", params={
        "bbox": f"{e['xmin']},{e['ymin']},{e['xmax']},{e['ymax']}", "bboxSR": "4326",
        "size": "72,36", "format": "tiff", "f": "image", "adjustAspectRatio": "false"})  # fmt: skip
    _data, valid, _ = read_tiff(r.content)
    assert valid.all(), valid.mean()


@pytest.mark.parametrize("name", GRIDS)
def test_query_extent_and_footprints_are_valid(server: httpx.Client, name: str) -> None:
    body = get(server, f"{name}/ImageServer/query", where="1=1", returnExtentOnly="true")
    assert_valid(body["extent"])
    body = get(server, f"{name}/ImageServer/query", where="1=1", returnGeometry="true")
    assert body["features"]
    for feature in body["features"]:
        for ring in feature["geometry"]["rings"]:
            assert all(-90 <= y <= 90 and -180 <= x <= 360 for x, y in ring), ring
    oid = body["features"][0]["attributes"]["OBJECTID"]
    assert_valid(get(server, f"{name}/ImageServer/{oid}/info")["extent"])


@pytest.mark.parametrize("name", GRIDS)
def test_default_export_in_web_mercator(server: httpx.Client, name: str) -> None:
    """The service extent is what a client draws first; in Web Mercator it must be finite."""
    body = get(server, f"{name}/ImageServer/exportImage", imageSR="3857", size="64,64")
    ext = body["extent"]
    assert all(math.isfinite(ext[k]) for k in ("xmin", "ymin", "xmax", "ymax")), ext
    assert server.get(body["href"]).content.startswith((b"\x89PNG", b"\xff\xd8"))


def _tiff(server: httpx.Client, bbox: str, sr: str = "4326") -> tuple[Any, Any]:
    r = server.get("/arcgis/rest/services/gfs/ImageServer/exportImage", params={
        "bbox": bbox, "bboxSR": "4326", "imageSR": sr, "size": "40,30", "format": "tiff",
        "f": "image", "interpolation": "RSP_NearestNeighbor"})  # fmt: skip
    assert r.status_code == 200, r.text
    data, valid, _ = read_tiff(r.content)
    return data, valid


def test_a_request_west_of_0_over_a_0_360_grid_is_drawn(server: httpx.Client) -> None:
    """The western hemisphere asked in -180..180 over a grid stored in 0..360 draws the same
    cells as the same place asked in 0..360: one Earth, whichever convention a client uses."""
    west, west_valid = _tiff(server, "-100,20,-60,50")
    east, east_valid = _tiff(server, "260,20,300,50")
    assert east_valid.all()
    assert west_valid.all(), west_valid.mean()
    assert (west == east).all()
    # a request across the meridian draws both sides (0..30 and 330..360 of the grid)
    _, across = _tiff(server, "-30,-10,30,20")
    assert across.all(), across.mean()


def test_a_web_mercator_map_west_of_0_over_a_0_360_grid_is_drawn(server: httpx.Client) -> None:
    _, valid = _tiff(server, "-100,20,-60,50", sr="3857")
    assert valid.mean() > 0.99, valid.mean()


def test_identify_west_of_0_over_a_0_360_grid(server: httpx.Client) -> None:
    def value(x: float) -> Any:
        body = get(server, "gfs/ImageServer/identify", geometry=f'{{"x":{x},"y":35}}',
                   geometryType="esriGeometryPoint", returnCatalogItems="false")  # fmt: skip
        return body["value"]

    assert value(-80) == value(280) != "NoData"
