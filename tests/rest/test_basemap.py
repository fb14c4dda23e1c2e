"""The live viewer's offline basemap: Natural Earth lines near a service, in its projection."""

from __future__ import annotations

import httpx
from rasterio.warp import transform

from livemosaic.adapters.raster import RasterioProjector
from livemosaic.core.basemap import BaseLines, area_of_interest, basemap_near
from livemosaic.core.models import Extent
from livemosaic.rest.viewer import base_lines
from tests.rest.helpers import LiveServer


def test_lines_are_projected_and_split_where_they_cannot_be() -> None:
    lines = BaseLines.from_json(
        {
            "source": "test",
            "coastlines": [[-80.0, 25.0, -75.0, 25.5, -70.0, 26.0]],
            "borders": [[10.0, 80.0, 10.0, 89.0, 10.0, 90.0, 10.0, 89.5, 10.5, 89.0]],
        }
    )
    projector = RasterioProjector()
    near = basemap_near(lines, Extent(-180, -90, 180, 90), "EPSG:32618", projector)
    xs, ys = transform("EPSG:4326", "EPSG:32618", [-80.0, -75.0, -70.0], [25.0, 25.5, 26.0])
    assert near["coastlines"] == [[[round(x, 3), round(y, 3)] for x, y in zip(xs, ys, strict=True)]]
    # only the part near the area is kept (a local projection distorts what is far away)
    long_line = {"source": "t", "coastlines": [[-90.0, 25.0, -85.0, 25.0, -80.0, 25.0, -75.0,
                                                25.0, -70.0, 25.0, -65.0, 25.0]]}  # fmt: skip
    clipped = basemap_near(
        BaseLines.from_json(long_line), Extent(-78, 20, -72, 30), "EPSG:4326", projector
    )
    assert clipped["coastlines"] == [[[-80.0, 25.0], [-75.0, 25.0], [-70.0, 25.0]]]
    # lines far from the area are left out
    assert basemap_near(lines, Extent(0, -10, 20, 10), "EPSG:4326", projector)["coastlines"] == []


def test_area_of_interest_has_a_margin_and_stays_on_earth() -> None:
    projector = RasterioProjector()
    area = area_of_interest(Extent(0, 0, 10, 10), "EPSG:4326", projector)
    assert area == Extent(-10, -10, 20, 20)
    assert area_of_interest(Extent(-170, -80, 170, 80), "EPSG:4326", projector) == Extent(
        -180, -90, 180, 90
    )
    assert area_of_interest(None, "EPSG:4326", projector) == Extent(-180, -90, 180, 90)


def test_shipped_basemap_is_natural_earth_and_small() -> None:
    lines = base_lines()
    assert "Natural Earth" in lines.source
    assert len(lines.layers["coastlines"]) > 1000 and len(lines.layers["borders"]) > 100


def test_basemap_of_a_service_in_its_projection(client: httpx.Client, live: LiveServer) -> None:
    """Around the multi-CRS mosaic (Web Mercator, spanning the world through world.rgb.tif)."""
    info = client.get("/arcgis/rest/services/Live/multicrs/ImageServer", params={"f": "json"})
    extent = info.json()["extent"]
    r = client.get("/arcgis/livemosaic/basemap/Live/multicrs")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    layers = {f["properties"]["layer"]: f["geometry"]["coordinates"] for f in body["features"]}
    assert len(layers["coastlines"]) > 100 and len(layers["borders"]) > 10
    assert all(f["geometry"]["coordinates"] for f in body["features"])  # no empty layers
    xs = [p[0] for line in layers["coastlines"] for p in line]
    assert max(abs(x) for x in xs) <= 20037508.35 + 1  # metres of Web Mercator, not degrees
    assert max(abs(x) for x in xs) > 180
    assert extent["xmin"] < extent["xmax"]
    page = client.get("/arcgis/livemosaic/viewer/Live/multicrs").text
    assert "/arcgis/livemosaic/basemap/Live/multicrs" in page  # the viewer is told where


def test_basemap_of_an_unknown_service_is_an_arcgis_error(client: httpx.Client) -> None:
    r = client.get("/arcgis/livemosaic/basemap/Nope/nothing", params={"f": "json"})
    assert r.json()["error"]["code"] in (400, 404)
