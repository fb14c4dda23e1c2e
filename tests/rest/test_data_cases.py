"""Data that must come out right (issue 7, section 2), through a real server.

Services over files written with GDAL in the test (see :mod:`tests.gen_rasters`) and the NAM
GRIB2 sample:

* ``packed``   - two bands packed with different scales/offsets: each band unpacked with its own.
* ``ensemble`` - GRIB2 ensemble: the members and the level type are dimensions, ``TMP`` is ``TMP``.
* ``ncens``    - NetCDF ``tas(member, time, lat, lon)``: ``member`` is a dimension of its own.
* ``nam``      - the NAM analysis: variables named as the file names them.
* ``nocrs``    - an ESRI ASCII grid without a CRS in a dataset created with one.
* ``curvi``    - a NetCDF variable on a curvilinear grid (2-D lat/lon), in Web Mercator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.ports import ItemQuery
from livemosaic.rest.params import parse_time
from livemosaic.rest.rules import parse_md_definition
from tests import gen_rasters as gen
from tests.liveserver import LiveServer, add_dataset, make_server
from tests.rest.helpers import error_of, ok_json, read_tiff

ROOT = "/arcgis"
NEAREST = "RSP_NearestNeighbor"


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    made = tmp_path_factory.mktemp("datacases_files")
    files = {
        "packed": gen.packed_tif(made),
        "ensemble": gen.ensemble_grib(made),
        "nocrs": gen.crs_less_asc(made),
        "curvi": gen.curvilinear_nc(made),
        "ncens": gen.ensemble_nc(made),
    }

    def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
        add_dataset(ing, "packed", [files["packed"]])
        add_dataset(ing, "ensemble", [files["ensemble"]])
        add_dataset(ing, "ncens", [files["ncens"]])
        add_dataset(ing, "nam", [shared_data / "multidim/nam.t00z.awp21100.tm00.grib2"])
        ing.create_dataset("curvi", crs="EPSG:3857")
        ing.add_paths("curvi", [files["curvi"]])  # checked by its test
        ing.create_dataset("nocrs", crs=gen.UTM)
        ing.add_paths("nocrs", [files["nocrs"]])  # checked by its test
        for name in ("packed", "ensemble", "ncens", "nam", "nocrs", "curvi"):
            ctx.publisher.publish(ServiceDefinition(name=name, dataset=name))

    with make_server(
        tmp_path_factory.mktemp("datacases"),
        made,
        populate,
        data_folders=[made, shared_data],
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=120) as c:
        yield c


def svc(name: str) -> str:
    return f"{ROOT}/rest/services/{name}/ImageServer"


def post(client: httpx.Client, service: str, op: str, **params: Any) -> httpx.Response:
    params.setdefault("f", "json")
    for key, value in list(params.items()):
        if isinstance(value, dict | list):
            params[key] = json.dumps(value)
    return client.post(svc(service) + "/" + op, data=params)


def export_tiff(client: httpx.Client, service: str, **params: Any) -> tuple[Any, Any]:
    r = post(client, service, "exportImage", f="image", format="tiff", pixelType="F32",
             interpolation=NEAREST, **params)  # fmt: skip
    assert r.headers["content-type"] == "image/tiff", r.text[:300]
    data, valid, _ = read_tiff(r.content)
    return data, valid


def unpacked() -> np.ndarray:
    raw = gen.packed_raw().astype(np.float64)
    scales = np.array(gen.PACKED_SCALES).reshape(2, 1, 1)
    offsets = np.array(gen.PACKED_OFFSETS).reshape(2, 1, 1)
    return raw * scales + offsets


# -- per-band scale and offset ---------------------------------------------------------------


def cell_centre(row: int, col: int) -> dict[str, float]:
    x, y = gen.UTM_TRANSFORM * (col + 0.5, row + 0.5)
    return {"x": x, "y": y}


def test_export_unpacks_each_band_with_its_own_factors(client: httpx.Client) -> None:
    t = gen.UTM_TRANSFORM
    bbox = f"{t.c},{t.f - 20 * 30},{t.c + 20 * 30},{t.f}"
    data, valid = export_tiff(client, "packed", bbox=bbox, size="20,20")
    assert valid.all()
    assert np.allclose(data, unpacked(), rtol=1e-5)


def test_identify_and_samples_use_each_bands_factors(client: httpx.Client) -> None:
    expected = unpacked()[:, 7, 11]
    body = ok_json(post(client, "packed", "identify", geometry=cell_centre(7, 11),
                        geometryType="esriGeometryPoint"))  # fmt: skip
    values = [float(v) for v in body["value"].split(",")]
    assert np.allclose(values, expected, rtol=1e-5), (values, expected)
    body = ok_json(post(client, "packed", "getSamples", geometry=cell_centre(7, 11),
                        geometryType="esriGeometryPoint"))  # fmt: skip
    values = [float(v) for v in body["samples"][0]["value"].split()]
    assert np.allclose(values, expected, rtol=1e-5), (values, expected)


def test_statistics_are_per_band_unpacked(client: httpx.Client) -> None:
    info = ok_json(client.get(svc("packed"), params={"f": "json"}))
    expected = unpacked()
    for band, stats in enumerate(info["minValues"]):
        assert np.isclose(stats, expected[band].min(), rtol=1e-5)
    for band, stats in enumerate(info["maxValues"]):
        assert np.isclose(stats, expected[band].max(), rtol=1e-5)
    body = ok_json(post(client, "packed", "statistics"))
    got = [(s["min"], s["max"]) for s in body["statistics"]]
    want = [(float(expected[b].min()), float(expected[b].max())) for b in range(2)]
    assert np.allclose(got, want, rtol=1e-5), (got, want)


# -- every dimension of a GRIB file, variables named as the file names them ----------------------


def md_variables(client: httpx.Client, service: str) -> dict[str, Any]:
    body = ok_json(client.get(svc(service) + "/multidimensionalInfo",
                              params={"f": "json", "returnDimensionValues": "always"}))  # fmt: skip
    return {v["name"]: v for v in body["multidimensionalInfo"]["variables"]}


def test_ensemble_members_and_level_types_are_dimensions(client: httpx.Client) -> None:
    variables = md_variables(client, "ensemble")
    assert list(variables) == ["TMP"]
    dims = {d["name"]: d for d in variables["TMP"]["dimensions"]}
    assert set(dims) == {"StdTime", "StdZ", "LevelType", "EnsembleMember"}
    assert dims["EnsembleMember"]["values"] == [0, 1, 2]
    assert dims["LevelType"]["values"] == [100, 103]
    assert "103 = HTGL" in dims["LevelType"]["description"]
    slices = ok_json(client.get(svc("ensemble") + "/slices", params={"f": "json"}))["slices"]
    defs = [{e["dimensionName"]: e["values"][0] for e in s["multidimensionalDefinition"]}
            for s in slices]  # fmt: skip
    assert {d["EnsembleMember"] for d in defs} == {0, 1, 2}


@pytest.mark.parametrize("member", gen.GRIB_MEMBERS)
@pytest.mark.parametrize("level", gen.GRIB_LEVELS)
def test_every_member_can_be_drawn(
    client: httpx.Client, member: int, level: tuple[int, int, str, float]
) -> None:
    code, z, _, base = level
    md = [
        {"variableName": "TMP", "dimensionName": "EnsembleMember", "values": [member]},
        {"variableName": "TMP", "dimensionName": "LevelType", "values": [code]},
        {"variableName": "TMP", "dimensionName": "StdZ", "values": [z]},
    ]
    data, valid = export_tiff(client, "ensemble", bbox="-80,37,-70,45", bboxSR=4326,
                              size="10,8", mosaicRule={"multidimensionalDefinition": md})  # fmt: skip
    assert valid.all()
    assert np.allclose(data[0], gen.grib_value(member, base))


@pytest.mark.parametrize("member", range(gen.NC_MEMBERS))
def test_netcdf_extra_dimension_is_a_dimension(client: httpx.Client, member: int) -> None:
    dims = {d["name"]: d for d in md_variables(client, "ncens")["tas"]["dimensions"]}
    assert set(dims) == {"StdTime", "member"}
    assert dims["member"]["values"] == list(range(gen.NC_MEMBERS))
    md = [
        {"variableName": "tas", "dimensionName": "member", "values": [member]},
        {"variableName": "tas", "dimensionName": "StdTime", "values": ["2020-01-02T00:00:00Z"]},
    ]
    data, valid = export_tiff(client, "ncens", bbox="10,37,15,41", bboxSR=4326, size="5,4",
                              mosaicRule={"multidimensionalDefinition": md})  # fmt: skip
    assert valid.all()
    assert np.array_equal(data[0], gen.ensemble_values()[member, 1])


def test_grib_variables_keep_the_files_names(client: httpx.Client) -> None:
    variables = md_variables(client, "nam")
    assert "TMP" in variables and not any("_" in name for name in variables)
    dims = {d["name"]: d for d in variables["TMP"]["dimensions"]}
    assert {100, 103, 108} <= set(dims["LevelType"]["values"])
    md = [{"variableName": "TMP", "dimensionName": "LevelType", "values": [103]}]
    body = ok_json(post(client, "nam", "query", multidimensionalDefinition=md,
                        outFields="Variable,StdZ", returnGeometry="false"))  # fmt: skip
    assert [f["attributes"]["Variable"] for f in body["features"]] == ["TMP"]


UNKNOWN = [  # (definition, named in the error, listed as valid)
    ([{"variableName": "TMP_ISBL"}], "TMP_ISBL", "TMP"),
    ([{"variableName": "TMP", "dimensionName": "Depth", "values": [1]}], "Depth", "LevelType"),
    ([{"variableName": "TMP", "dimensionName": "StdZ", "values": [12345]}], "12345", "85000"),
]  # fmt: skip


@pytest.mark.parametrize(("md", "named", "listed"), UNKNOWN)
@pytest.mark.parametrize("op", ["exportImage", "identify", "getSamples", "query", "slices"])
def test_unknown_variable_or_value_is_a_400_listing_the_valid_ones(
    client: httpx.Client, op: str, md: list[dict[str, Any]], named: str, listed: str
) -> None:
    params: dict[str, Any] = {}
    if op in ("query", "slices"):
        params["multidimensionalDefinition"] = md
    else:
        params["mosaicRule"] = {"multidimensionalDefinition": md}
    if op == "exportImage":
        params.update(bbox="-4000000,-100000,3000000,5000000", size="50,50")
    if op in ("identify", "getSamples"):
        params.update(geometry={"x": 0, "y": 2000000}, geometryType="esriGeometryPoint")
    err = error_of(post(client, "nam", op, **params))
    assert err["code"] == 400
    text = err["message"] + " ".join(err.get("details", []))
    assert named in text and listed in text, text


# -- times as clients write them ---------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [gen.GRIB_REF_MS, "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00",
     "2024-01-01T00:00:00.000Z", "2024/01/01 00:00:00"],
)  # fmt: skip
def test_dimension_times_in_every_form(client: httpx.Client, when: Any) -> None:
    md = [
        {"variableName": "TMP", "dimensionName": "StdTime", "values": [when]},
        {"variableName": "TMP", "dimensionName": "LevelType", "values": [103]},
        {"variableName": "TMP", "dimensionName": "StdZ", "values": [2]},
        {"variableName": "TMP", "dimensionName": "EnsembleMember", "values": [1]},
    ]
    data, valid = export_tiff(client, "ensemble", bbox="-80,37,-70,45", bboxSR=4326,
                              size="10,8", mosaicRule={"multidimensionalDefinition": md})  # fmt: skip
    assert valid.all() and np.allclose(data[0], gen.grib_value(1, 20.0))
    r = post(client, "ensemble", "query", time=f"{when},{when}" if isinstance(when, str) else when,
             returnCountOnly="true")  # fmt: skip
    assert ok_json(r)["count"] == 6


# -- a dataset's CRS for files that have none -------------------------------------------------


def test_crs_less_grid_takes_the_datasets_crs(client: httpx.Client, server: LiveServer) -> None:
    [item] = server.ctx.catalog.find_items("nocrs", ItemQuery())
    assert item.attributes["assumed_crs"] == gen.UTM
    t = gen.UTM_TRANSFORM
    bbox = f"{t.c},{t.f - 20 * 30},{t.c + 20 * 30},{t.f}"
    data, valid = export_tiff(client, "nocrs", bbox=bbox, size="20,20")
    assert valid.all()
    assert np.array_equal(data[0], np.arange(400, dtype=np.float32).reshape(20, 20))


@pytest.mark.parametrize(
    "text",
    ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00.000Z",
     "2023-12-31T19:00:00-05:00", "2024/01/01", "1704067200000"],
)  # fmt: skip
def test_one_time_parser_for_definitions_and_the_time_parameter(text: str) -> None:
    md = [{"variableName": "TMP", "dimensionName": "StdTime", "values": [text]}]
    [flt] = parse_md_definition(md)
    assert flt.values == (float(gen.GRIB_REF_MS),)
    assert parse_time(text) == (gen.GRIB_REF_MS, gen.GRIB_REF_MS)
    assert parse_time(f"{text},null") == (gen.GRIB_REF_MS, None)


# -- curvilinear grids -------------------------------------------------------------------------


def test_curvilinear_grid_is_served(client: httpx.Client, server: LiveServer) -> None:
    [item] = server.ctx.catalog.find_items("curvi", ItemQuery())
    assert item.attributes["geolocation"] is True
    lon, lat = gen.curvilinear_grid()
    r, c = 5, 7
    point = {"x": float(lon[r, c]), "y": float(lat[r, c]), "spatialReference": {"wkid": 4326}}
    body = ok_json(post(client, "curvi", "identify", geometry=point,
                        geometryType="esriGeometryPoint"))  # fmt: skip
    assert float(body["value"]) == gen.curvilinear_values()[r, c]
    e = item.extent
    data, valid = export_tiff(client, "curvi", bbox=f"{e.xmin},{e.ymin},{e.xmax},{e.ymax}",
                              size="200,200")  # fmt: skip
    assert 0.3 < valid.mean() < 0.95  # a sheared quadrilateral inside its bounding box
    assert set(np.unique(data[0][valid])) <= set(gen.curvilinear_values().ravel())


def test_open_dimensions_take_values_that_exist_together(client: httpx.Client) -> None:
    """StdZ 2 (metres) exists only at LevelType 103: the open LevelType follows the data
    instead of its first value (100, isobaric), which would draw nothing."""
    md = [{"variableName": "TMP", "dimensionName": "StdZ", "values": [2]}]
    data, valid = export_tiff(client, "ensemble", bbox="-80,37,-70,45", bboxSR=4326,
                              size="10,8", mosaicRule={"multidimensionalDefinition": md})  # fmt: skip
    assert valid.all() and np.allclose(data[0], gen.grib_value(0, 20.0))


@pytest.mark.parametrize("variable", ["TMP", "HGT", "PRMSL", "RH", "UGRD"])
def test_each_grib_variable_draws_by_name_alone(client: httpx.Client, variable: str) -> None:
    md = [{"variableName": variable}]
    _, valid = export_tiff(client, "nam", bbox="-4000000,-100000,3000000,5000000", size="50,50",
                           mosaicRule={"multidimensionalDefinition": md})  # fmt: skip
    assert valid.any(), variable
