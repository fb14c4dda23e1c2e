"""RasterioProjector: spatial references in and out, extents and points transformed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from livemosaic.adapters.raster import RasterioProjector
from livemosaic.adapters.raster.crs import crs_key
from livemosaic.core.models import Extent, SpatialRef
from livemosaic.errors import InvalidParameter

P = RasterioProjector()


@pytest.mark.parametrize(
    ("key", "wkid", "latest"),
    [
        ("EPSG:4326", 4326, 4326),
        ("EPSG:3857", 102100, 3857),
        ("EPSG:102100", 102100, 3857),
        ("EPSG:32618", 32618, 32618),
        ("ESRI:54030", 54030, 54030),
        ("ESRI:102003", 102003, 102003),
    ],
)
def test_describe_known_codes(key: str, wkid: int, latest: int) -> None:
    sr = P.describe(key)
    assert (sr.wkid, sr.latest_wkid, sr.wkt) == (wkid, latest, None)


def test_describe_custom_crs_gives_esri_wkt(shared_data: Path) -> None:
    with rasterio.open(shared_data / "crs/goes.tif") as ds:
        key = crs_key(ds.crs)
    sr = P.describe(key)
    assert sr.wkid is None and sr.wkt is not None
    assert "Geostationary_Satellite" in sr.wkt  # ESRI flavour of WKT1
    assert sr.to_json() == {"wkt": sr.wkt}


def test_describe_wkt_of_an_epsg_system() -> None:
    assert P.describe(CRS.from_epsg(2056).to_wkt()).wkid == 2056


@pytest.mark.parametrize("wkid", [3857, 102100, 102113, 900913])
def test_web_mercator_aliases(wkid: int) -> None:
    assert P.validate(SpatialRef(wkid=wkid)) == "EPSG:3857"
    assert P.validate(SpatialRef(latest_wkid=wkid)) == "EPSG:3857"


def test_validate_codes_and_wkt() -> None:
    assert P.validate(SpatialRef(wkid=4326)) == "EPSG:4326"
    assert P.validate(SpatialRef(wkid=54030)) == "ESRI:54030"
    assert P.validate(SpatialRef(wkid=102003)) == "ESRI:102003"
    assert P.validate(SpatialRef(wkt=CRS.from_epsg(32633).to_wkt())) == "EPSG:32633"
    custom = "+proj=sinu +R=6371007.181 +units=m +no_defs"
    key = P.validate(SpatialRef(wkt=CRS.from_proj4(custom).to_wkt()))
    assert key.startswith("PROJCS") and CRS.from_user_input(key).to_proj4().startswith("+proj=sinu")


@pytest.mark.parametrize(
    "sr",
    [SpatialRef(wkid=999999), SpatialRef(wkt="PROJCS[nonsense"), SpatialRef()],
)
def test_validate_rejects_unknown(sr: SpatialRef) -> None:
    with pytest.raises(InvalidParameter) as info:
        P.validate(sr)
    assert info.value.parameter == "spatialReference"


def test_transform_extent_matches_rasterio(shared_data: Path) -> None:
    with rasterio.open(shared_data / "imagery/RGB.byte.tif") as ds:
        expected = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        ext = P.transform_extent(Extent(*ds.bounds), "EPSG:32618", "EPSG:4326")
    assert (ext.xmin, ext.ymin, ext.xmax, ext.ymax) == pytest.approx(expected, abs=1e-9)
    same = Extent(1, 2, 3, 4)
    assert P.transform_extent(same, "EPSG:3857", "EPSG:102100") == same


def test_world_to_web_mercator_is_finite() -> None:
    ext = P.transform_extent(Extent(-180, -90, 180, 90), "EPSG:4326", "EPSG:3857")
    assert ext.xmin == pytest.approx(-20037508.34, abs=1) and ext.xmax == pytest.approx(
        20037508.34, abs=1
    )
    assert 1.9e7 < ext.ymax < 2.1e7 and ext.is_valid()


def test_transform_extent_keeps_only_finite_points(shared_data: Path) -> None:
    with rasterio.open(shared_data / "crs/goes.tif") as ds:
        key = crs_key(ds.crs)
        bounds = Extent(*ds.bounds)
    ext = P.transform_extent(bounds, key, "EPSG:4326")
    assert ext.is_valid() and 80 < ext.ymax < 82 and -157 < ext.xmin < -155
    back = P.transform_extent(Extent(-180, -90, 180, 90), "EPSG:4326", key)
    assert back.is_valid() and back.xmax <= bounds.xmax + 1
    off_disk = Extent(5.3e6, 5.3e6, 5.4e6, 5.4e6)  # a corner of the square beyond the Earth
    with pytest.raises(InvalidParameter):
        P.transform_extent(off_disk, key, "EPSG:4326")


def test_transform_points_axis_order_and_infinity(shared_data: Path) -> None:
    xs, ys = P.transform_points([-75.0, 10.0], [40.0, 0.0], "EPSG:4326", "EPSG:3857")
    assert xs[0] == pytest.approx(-8348961.81, abs=1) and ys[0] == pytest.approx(4865942.28, abs=1)
    assert xs[1] == pytest.approx(1113194.91, abs=1) and ys[1] == pytest.approx(0, abs=1e-6)
    with rasterio.open(shared_data / "crs/goes.tif") as ds:
        key = crs_key(ds.crs)
    gx, gy = P.transform_points([0.0, 5.4e6], [0.0, 5.4e6], key, "EPSG:4326")
    assert gx[0] == pytest.approx(-75.0) and gy[0] == pytest.approx(0.0, abs=1e-9)
    assert math.isinf(gx[1]) and math.isinf(gy[1])


def test_meters_per_unit() -> None:
    assert P.meters_per_unit("EPSG:4326") == pytest.approx(111319.49, abs=0.01)
    assert P.meters_per_unit("EPSG:3857") == 1.0
    assert P.meters_per_unit("EPSG:2229") == pytest.approx(0.3048006)  # US survey feet
