"""Multidimensional services (spec 6.5, 7.4.3): info, slices by definition and by time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio

from livemosaic.core.models import RasterItem
from livemosaic.core.ports import DimensionFilter, ItemQuery
from tests.rest.helpers import LiveServer, error_of, ok_json, read_tiff

NEAREST = "RSP_NearestNeighbor"


def md_info(client: httpx.Client, live: LiveServer, service: str, **params: Any) -> dict[str, Any]:
    body = ok_json(
        client.get(live.svc(service) + "/multidimensionalInfo", params={"f": "json", **params})
    )
    return {v["name"]: v for v in body["multidimensionalInfo"]["variables"]}


def dim(variable: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in variable["dimensions"] if d["name"] == name)


def climate_times(live: LiveServer) -> list[int]:
    """Epoch ms of the 12 time steps, decoded from the NetCDF tags by hand."""
    with rasterio.open(f'netcdf:"{live.data / "timeseries/bcsd_obs_1999.nc"}":tas') as ds:
        tags = ds.tags()
    units = tags["time#units"]  # "days since YYYY-MM-DD ..."
    origin = datetime.fromisoformat(units.split("since", 1)[1].strip()[:10]).replace(tzinfo=UTC)
    days = [float(v) for v in tags["NETCDF_DIM_time_VALUES"].strip("{}").split(",")]
    return [int((origin + timedelta(days=d)).timestamp() * 1000) for d in days]


def test_both_spellings_and_case(client: httpx.Client, live: LiveServer) -> None:
    bodies = [
        ok_json(client.get(live.svc("climate") + path, params={"f": "json"}))
        for path in ("/multidimensionalInfo", "/multiDimensionalInfo", "/MULTIDIMENSIONALINFO/")
    ]
    assert bodies[0] == bodies[1] == bodies[2]


def test_climate_variables_and_time_dimension(client: httpx.Client, live: LiveServer) -> None:
    variables = md_info(client, live, "climate", returnDimensionValues="always")
    assert set(variables) == {"pr", "tas"}
    time = dim(variables["tas"], "StdTime")
    expected = climate_times(live)
    assert time["values"] == expected
    assert time["extent"] == [expected[0], expected[-1]]
    assert time["unit"] == "ISO8601" and time["field"] == "StdTime"
    assert time["hasRegularIntervals"] is True
    assert (time["interval"], time["intervalUnit"]) == (1, "Months")
    assert variables["tas"]["statistics"][0]["max"] >= variables["tas"]["statistics"][0]["min"]
    default = md_info(client, live, "climate")
    assert "values" not in dim(default["tas"], "StdTime")  # regular: values only when asked
    never = md_info(client, live, "climate", returnDimensionValues="never")
    assert "values" not in dim(never["tas"], "StdTime")


def test_ocean_depth_and_time(client: httpx.Client, live: LiveServer) -> None:
    variables = md_info(client, live, "ocean")
    temp = next(v for name, v in variables.items() if name.lower() == "temperature")
    names = {d["name"] for d in temp["dimensions"]}
    assert {"StdTime", "StdZ"} <= names
    time = dim(temp, "StdTime")
    assert time["hasRegularIntervals"] is True and (time["interval"], time["intervalUnit"]) == (
        1,
        "Days",
    )
    assert time["extent"][1] - time["extent"][0] == 4 * 86_400_000
    depth = dim(temp, "StdZ")
    assert len(depth["values"]) == 17  # irregular levels: values by default


def test_key_properties_and_variable_statistics(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("climate"), params={"f": "json"}))
    kp = ok_json(client.get(live.svc("climate") + "/keyProperties", params={"f": "json"}))
    assert kp["DefaultVariable"] == info["defaultVariable"]
    stats = ok_json(
        client.get(live.svc("climate") + "/statistics", params={"f": "json", "variable": "TAS"})
    )
    assert len(stats["statistics"]) == 1
    hist = ok_json(
        client.get(live.svc("climate") + "/histograms", params={"f": "json", "variable": "tas"})
    )
    assert len(hist["histograms"]) == 1 and sum(hist["histograms"][0]["counts"]) > 0


def export_tiff(
    client: httpx.Client, live: LiveServer, service: str, **params: Any
) -> tuple[Any, Any]:
    for key in ("mosaicRule",):
        if isinstance(params.get(key), dict | list):
            params[key] = json.dumps(params[key])
    r = client.get(live.svc(service) + "/exportImage", params={"f": "image", "format": "tiff", "pixelType": "F32",
                                                                "interpolation": NEAREST, **params})  # fmt: skip
    assert r.headers["content-type"] == "image/tiff", r.text[:300]
    data, valid, _ = read_tiff(r.content)
    return data, valid


def native_grid(item: RasterItem) -> dict[str, str]:
    e = item.native_extent
    return {"bbox": f"{e.xmin},{e.ymin},{e.xmax},{e.ymax}", "size": f"{item.width},{item.height}"}


def expected_band(item: RasterItem) -> Any:
    with rasterio.open(item.uri) as ds:
        band = item.bands[0]
        data = ds.read(band).astype("float64")
        nodata = ds.nodatavals[band - 1]
    valid = np.isfinite(data) if nodata is None else (data != nodata) & np.isfinite(data)
    if item.scale is not None or item.offset is not None:
        data = data * (item.scale if item.scale is not None else 1.0) + (item.offset or 0.0)
    return data, valid


def check_slice(data: Any, valid: Any, item: RasterItem) -> None:
    expected, exp_valid = expected_band(item)
    assert data.shape[1:] == expected.shape
    assert np.array_equal(valid, exp_valid)
    assert np.allclose(data[0][exp_valid], expected[exp_valid], rtol=1e-6, atol=1e-6)


def test_climate_slice_by_definition_and_by_time(client: httpx.Client, live: LiveServer) -> None:
    times = climate_times(live)
    t = times[5]
    items = live.items(
        "climate", ItemQuery(dimensions=(DimensionFilter("tas", "StdTime", (float(t),)),))
    )
    assert len(items) == 1
    item = items[0]
    grid = native_grid(item)
    md = [{"variableName": "tas", "dimensionName": "StdTime", "values": [t], "isSlice": True}]
    data, valid = export_tiff(
        client, live, "climate", mosaicRule={"multidimensionalDefinition": md}, **grid
    )
    check_slice(data, valid, item)
    data, valid = export_tiff(
        client, live, "climate", time=str(t), mosaicRule={"where": "Variable = 'tas'"}, **grid
    )
    check_slice(data, valid, item)
    other, _ = export_tiff(
        client,
        live,
        "climate",
        time=str(times[0]),
        mosaicRule={"where": "Variable = 'tas'"},
        **grid,
    )
    assert not np.array_equal(other, data)


def test_ocean_slice_by_time_and_depth(client: httpx.Client, live: LiveServer) -> None:
    variables = md_info(client, live, "ocean", returnDimensionValues="always")
    name = next(n for n in variables if n.lower() == "temperature")
    t = dim(variables[name], "StdTime")["values"][2]
    z = dim(variables[name], "StdZ")["values"][3]
    query = ItemQuery(
        dimensions=(
            DimensionFilter(name, "StdTime", (float(t),)),
            DimensionFilter(name, "StdZ", (float(z),)),
        )
    )
    items = live.items("ocean", query)
    assert len(items) == 1
    md = [
        {"variableName": name, "dimensionName": "StdTime", "values": [t]},
        {"variableName": name, "dimensionName": "StdZ", "values": [z]},
    ]
    data, valid = export_tiff(
        client,
        live,
        "ocean",
        mosaicRule={"multidimensionalDefinition": md},
        **native_grid(items[0]),
    )
    check_slice(data, valid, items[0])


@pytest.fixture(scope="module")
def weather_slice(client: httpx.Client, live: LiveServer) -> tuple[str, dict[str, Any], RasterItem]:
    variables = md_info(client, live, "weather", returnDimensionValues="always")
    for name, variable in sorted(variables.items()):
        dims = {d["name"]: d for d in variable["dimensions"]}
        if "StdZ" in dims and len(dims["StdZ"]["values"]) > 3:
            z = dims["StdZ"]["values"][2]
            items = live.items(
                "weather", ItemQuery(dimensions=(DimensionFilter(name, "StdZ", (float(z),)),))
            )
            if len(items) == 1:
                return name, {"StdZ": z}, items[0]
    raise AssertionError(f"no GRIB variable with a vertical dimension in {sorted(variables)}")


def test_grib_slice_by_definition(
    client: httpx.Client, live: LiveServer, weather_slice: tuple[str, dict[str, Any], RasterItem]
) -> None:
    name, values, item = weather_slice
    md = [{"variableName": name, "dimensionName": "StdZ", "values": [values["StdZ"]]}]
    data, valid = export_tiff(
        client, live, "weather", mosaicRule={"multidimensionalDefinition": md}, **native_grid(item)
    )
    check_slice(data, valid, item)


def test_query_by_variable_and_dimension(client: httpx.Client, live: LiveServer) -> None:
    times = climate_times(live)
    md = [{"variableName": "pr", "dimensionName": "StdTime", "values": [[times[2], times[4]]]}]
    r = client.post(live.svc("climate") + "/query", data={"f": "json", "multidimensionalDefinition": json.dumps(md),
                                                           "outFields": "Variable,StdTime", "returnGeometry": "false"})  # fmt: skip
    feats = ok_json(r)["features"]
    assert sorted(f["attributes"]["StdTime"] for f in feats) == times[2:5]
    assert {f["attributes"]["Variable"] for f in feats} == {"pr"}


def test_not_multidimensional(client: httpx.Client, live: LiveServer) -> None:
    err = error_of(
        client.get(live.svc("Live/ndvi") + "/multidimensionalInfo", params={"f": "json"})
    )
    assert err["code"] == 400


def test_slices_and_slice_id(client: httpx.Client, live: LiveServer) -> None:
    """{svc}/slices enumerates variable x time slices; sliceId selects one in exportImage."""
    svc = live.svc("climate")
    body = client.get(svc + "/slices", params={"f": "json"}).json()
    slices = body["slices"]
    assert len(slices) == 24 and [s["sliceId"] for s in slices] == list(range(24))
    only_tas = client.get(
        svc + "/slices",
        params={
            "f": "json",
            "multidimensionalDefinition": '[{"variableName": "tas", "dimensionName": "StdTime"'
            ', "values": [[0, 99999999999999]]}]',
        },
    ).json()["slices"]
    assert len(only_tas) == 12
    assert {d["variableName"] for s in only_tas for d in s["multidimensionalDefinition"]} == {"tas"}
    chosen = only_tas[3]
    md = chosen["multidimensionalDefinition"]
    by_id = client.get(
        svc + "/exportImage",
        params={"f": "image", "format": "tiff", "sliceId": str(chosen["sliceId"]), "size": "81,33"},
    )
    by_md = client.get(
        svc + "/exportImage",
        params={
            "f": "image",
            "format": "tiff",
            "size": "81,33",
            "mosaicRule": json.dumps({"multidimensionalDefinition": md}),
        },
    )
    with rasterio.MemoryFile(by_id.content) as a, rasterio.MemoryFile(by_md.content) as b:
        with a.open() as da, b.open() as db:
            assert np.array_equal(da.read(), db.read())
    bad = client.get(svc + "/exportImage", params={"f": "json", "sliceId": "9999"}).json()
    assert bad["error"]["code"] == 400 and "sliceId" in " ".join(bad["error"]["details"])
