"""identify (spec 6.2) and getSamples (6.4) against values read with rasterio."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp_transform

from tests.rest.helpers import LiveServer, error_of, ok_json


def call(client: httpx.Client, live: LiveServer, service: str, op: str, **params: Any) -> Any:
    params.setdefault("f", "json")
    for key, value in list(params.items()):
        if isinstance(value, dict | list):
            params[key] = json.dumps(value)
    return ok_json(client.post(live.svc(service) + "/" + op, data=params))


@pytest.fixture(scope="module")
def dem(live: LiveServer) -> dict[str, Any]:
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        return {"data": ds.read(1), "transform": ds.transform, "crs": ds.crs, "nodata": ds.nodata}


def centre(dem: dict[str, Any], row: int, col: int) -> tuple[float, float]:
    x, y = dem["transform"] @ (col + 0.5, row + 0.5)
    return float(x), float(y)


def test_identify_point_value_and_shape(
    client: httpx.Client, live: LiveServer, dem: dict[str, Any]
) -> None:
    x, y = centre(dem, 123, 77)
    body = call(
        client, live, "dem", "identify", geometry={"x": x, "y": y}, geometryType="esriGeometryPoint"
    )
    assert body["objectId"] == 0 and body["name"] == "Pixel"
    expected = float(dem["data"][123, 77])
    assert math.isclose(float(body["value"]), expected, rel_tol=1e-6)
    assert body["location"]["spatialReference"]["wkid"] == 2056
    assert abs(body["location"]["x"] - x) < 1e-6 and abs(body["location"]["y"] - y) < 1e-6
    assert len(body["properties"]["Values"]) == 1
    assert math.isclose(float(body["properties"]["Values"][0]), expected, rel_tol=1e-6)
    items = body["catalogItems"]
    assert (
        items["objectIdFieldName"] == "OBJECTID" and items["geometryType"] == "esriGeometryPolygon"
    )
    item = live.item_by_path("dem", live.data / "dem/dem.tif")
    assert [f["attributes"]["OBJECTID"] for f in items["features"]] == [item.id]
    assert "rings" in items["features"][0]["geometry"]
    assert body["catalogItemVisibilities"] == [1]


def test_identify_simple_form_and_other_sr(
    client: httpx.Client, live: LiveServer, dem: dict[str, Any]
) -> None:
    x, y = centre(dem, 10, 300)
    simple = call(
        client, live, "dem", "identify", geometry=f"{x:.6f},{y:.6f}", returnGeometry="false"
    )
    assert math.isclose(float(simple["value"]), float(dem["data"][10, 300]), rel_tol=1e-6)
    assert "geometry" not in simple["catalogItems"]["features"][0]
    lon, lat = warp_transform(dem["crs"], "EPSG:4326", [x], [y])
    geo = call(
        client,
        live,
        "dem",
        "identify",
        geometry={"x": lon[0], "y": lat[0], "spatialReference": {"wkid": 4326}},
    )
    assert geo["value"] == simple["value"]


def test_identify_outside_is_nodata(client: httpx.Client, live: LiveServer) -> None:
    body = call(client, live, "dem", "identify", geometry="0,0")
    assert body["value"] == "NoData"
    assert body["properties"]["Values"] == []
    assert body["catalogItems"]["features"] == [] and body["catalogItemVisibilities"] == []


def test_identify_overlap_lists_items_in_mosaic_order(
    client: httpx.Client, live: LiveServer
) -> None:
    path = live.data / "imagery/RGB.byte.tif"
    with rasterio.open(path) as ds:
        orig = ds.read()
        t = ds.transform
    row, col = 200, 150  # inside q_nw, valid data
    assert (orig[:, row, col] != 0).all()
    x, y = t @ (col + 0.5, row + 0.5)
    body = call(client, live, "overlap", "identify", geometry=f"{x},{y}",
                mosaicRule={"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_FIRST"})  # fmt: skip
    values = [int(v) for v in orig[:, row, col]]
    assert body["value"] == ", ".join(str(v) for v in values)
    halved = [max(v // 2, 1) for v in values]
    assert body["properties"]["Values"] == [" ".join(map(str, values)), " ".join(map(str, halved))]
    full = live.item_by_path("overlap", path)
    q = live.item_by_path("overlap", live.quarters["q_nw"])
    assert [f["attributes"]["OBJECTID"] for f in body["catalogItems"]["features"]] == [
        full.id,
        q.id,
    ]
    assert body["catalogItemVisibilities"] == [1, 0]
    last = call(client, live, "overlap", "identify", geometry=f"{x},{y}",
                mosaicRule={"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_LAST"})  # fmt: skip
    assert last["value"] == ", ".join(map(str, halved))
    assert last["catalogItemVisibilities"] == [0, 1]


def test_identify_rendering_rules_processed_values(
    client: httpx.Client, live: LiveServer, dem: dict[str, Any]
) -> None:
    x, y = centre(dem, 200, 200)
    rules = [
        {"rasterFunction": "None"},
        {"rasterFunction": "Hillshade", "rasterFunctionArguments": {"ZFactor": 1}},
    ]
    body = call(client, live, "dem", "identify", geometry=f"{x},{y}", renderingRules=rules)
    assert len(body["processedValues"]) == 2
    assert math.isclose(
        float(body["processedValues"][0]), float(dem["data"][200, 200]), rel_tol=1e-6
    )


def test_samples_at_points(client: httpx.Client, live: LiveServer, dem: dict[str, Any]) -> None:
    cells = [(5, 5), (100, 250), (399, 0)]
    points = [list(centre(dem, r, c)) for r, c in cells]
    body = call(client, live, "dem", "getSamples", geometry={"points": points}, geometryType="esriGeometryMultipoint",
                outFields="Name,OBJECTID")  # fmt: skip
    samples = body["samples"]
    assert [s["locationId"] for s in samples] == [0, 1, 2]
    item = live.item_by_path("dem", live.data / "dem/dem.tif")
    for s, (r, c) in zip(samples, cells, strict=True):
        assert math.isclose(float(s["value"]), float(dem["data"][r, c]), rel_tol=1e-6)
        assert s["rasterId"] == item.id and s["resolution"] > 0
        assert s["location"]["spatialReference"]["wkid"] == 2056
        assert s["attributes"]["OBJECTID"] == item.id


def test_samples_along_a_polyline(
    client: httpx.Client, live: LiveServer, dem: dict[str, Any]
) -> None:
    (x0, y0), (x1, y1) = centre(dem, 50, 50), centre(dem, 50, 350)
    line = {"paths": [[[x0, y0], [x1, y1]]]}
    body = call(
        client,
        live,
        "dem",
        "getSamples",
        geometry=line,
        geometryType="esriGeometryPolyline",
        sampleCount=7,
    )
    locs = [(s["location"]["x"], s["location"]["y"]) for s in body["samples"]]
    assert len(locs) == 7
    assert math.isclose(locs[0][0], x0) and math.isclose(locs[-1][0], x1)
    assert all(math.isclose(ly, y0) for _lx, ly in locs)
    length = x1 - x0
    body = call(client, live, "dem", "getSamples", geometry=line, geometryType="esriGeometryPolyline",
                sampleDistance=length / 4.5)  # fmt: skip
    assert len(body["samples"]) == 6  # 0, d, 2d, 3d, 4d and the end point
    values = [float(s["value"]) for s in body["samples"]]
    first_col = 50
    assert math.isclose(values[0], float(dem["data"][50, first_col]), rel_tol=1e-6)


def test_samples_over_an_area(client: httpx.Client, live: LiveServer, dem: dict[str, Any]) -> None:
    (x0, y0), (x1, y1) = centre(dem, 300, 100), centre(dem, 100, 300)
    env = {"xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1}
    body = call(
        client,
        live,
        "dem",
        "getSamples",
        geometry=env,
        geometryType="esriGeometryEnvelope",
        sampleCount=16,
    )
    samples = body["samples"]
    assert 1 <= len(samples) <= 16
    inv = ~dem["transform"]
    for s in samples:
        x, y = s["location"]["x"], s["location"]["y"]
        assert x0 <= x <= x1 and y0 <= y <= y1
        col, row = inv @ (x, y)
        assert math.isclose(float(s["value"]), float(dem["data"][int(row), int(col)]), rel_tol=1e-6)


def test_samples_nodata_is_nan(client: httpx.Client, live: LiveServer) -> None:
    body = call(
        client,
        live,
        "dem",
        "getSamples",
        geometry={"points": [[0, 0]]},
        geometryType="esriGeometryMultipoint",
    )
    assert body["samples"][0]["value"] in ("NaN", "")


def test_sample_count_is_capped(
    client: httpx.Client, live: LiveServer, dem: dict[str, Any]
) -> None:
    cap = live.settings.max_sample_count
    (x0, y0), (x1, y1) = centre(dem, 300, 100), centre(dem, 100, 300)
    line = {"paths": [[[x0, y0], [x1, y1]]]}
    body = call(client, live, "dem", "getSamples", geometry=line, geometryType="esriGeometryPolyline",
                sampleCount=cap * 10)  # fmt: skip
    assert len(body["samples"]) == cap
    many = {"points": [[x0 + i * 1e-3, y0] for i in range(cap + 1)]}
    r = client.post(live.svc("dem") + "/getSamples", data={"f": "json", "geometry": json.dumps(many),
                                                           "geometryType": "esriGeometryMultipoint"})  # fmt: skip
    err = error_of(r)
    assert err["code"] == 400 and any("maxSampleCount" in d for d in err["details"])


def test_identify_values_of_multiband_tile(client: httpx.Client, live: LiveServer) -> None:
    path = live.data / "mosaic/rgb2.tif"
    with rasterio.open(path) as ds:
        data = ds.read()
        valid_rows, valid_cols = np.nonzero((data != 0).all(axis=0))
        r, c = int(valid_rows[len(valid_rows) // 2]), int(valid_cols[len(valid_cols) // 2])
        x, y = ds.transform @ (c + 0.5, r + 0.5)
    item = live.item_by_path("imagery", path)
    body = call(client, live, "imagery", "identify", geometry=f"{x},{y}",
                mosaicRule={"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [item.id]})  # fmt: skip
    assert body["value"] == ", ".join(str(int(v)) for v in data[:, r, c])
