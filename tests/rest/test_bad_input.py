"""Bad input answers a clear 4xx without server paths; service limits are advertised as enforced.

A real server (uvicorn on 127.0.0.1) with small server-wide limits and one dataset of seven
overlapping rasters (four tiles and three full scenes: four items at any point), published
four times: without properties, with properties lowering every limit, with properties trying
to raise every limit, and with properties an older version stored unvalidated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.rest.routes import ROUTERS
from tests.liveserver import LiveServer, add_dataset, make_server

ROOT = "/arcgis"
LIMITS = {  # server-wide settings of this server
    "max_image_width": 500,
    "max_image_height": 400,
    "max_record_count": 5,
    "max_mosaic_image_count": 3,
    "max_sample_count": 6,
}
LOWER = {
    "maxImageWidth": "300",
    "maxImageHeight": "200",
    "maxRecordCount": "3",
    "maxMosaicImageCount": "2",
    "maxSampleCount": "4",
}
RAISE = dict.fromkeys(LOWER, "999999")
LEGACY = {
    "maxImageWidth": "wide",
    "maxImageHeight": "-5",
    "maxRecordCount": "1e3x",
    "maxMosaicImageCount": "",
    "maxSampleCount": "NaN",
    "defaultCompressionQuality": "zz",
    "allowedMosaicMethods": "Bogus",
}
EXPECTED = {  # advertised (= enforced) limits of each service
    "plain": {"maxImageWidth": 500, "maxImageHeight": 400, "maxRecordCount": 5,
              "maxMosaicImageCount": 3, "maxSampleCount": 6},
    "lowered": {"maxImageWidth": 300, "maxImageHeight": 200, "maxRecordCount": 3,
                "maxMosaicImageCount": 2, "maxSampleCount": 4},
}  # fmt: skip
EXPECTED["raised"] = EXPECTED["plain"]
EXPECTED["legacy"] = EXPECTED["plain"]
POINT = {"x": 200000, "y": 2700000}  # inside a tile and the three full scenes


def _populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    files = sorted((data / "mosaic").glob("rgb*.tif"))
    files += [data / "imagery" / n for n in ("RGB.byte.tif", "RGBA.byte.tif", "RGB2.byte.tif")]
    add_dataset(ing, "stack", files)
    add_dataset(ing, "climate", [data / "timeseries/bcsd_obs_1999.nc"])
    ctx.publisher.publish(ServiceDefinition(name="plain", dataset="stack"))
    ctx.publisher.publish(ServiceDefinition(name="lowered", dataset="stack", properties=LOWER))
    ctx.publisher.publish(ServiceDefinition(name="raised", dataset="stack", properties=RAISE))
    ctx.publisher.publish(ServiceDefinition(name="climate", dataset="climate"))
    snapshot = ctx.publisher.publish(ServiceDefinition(name="legacy", dataset="stack"))
    # as an older version stored them: never validated
    stored = dict(snapshot.definition.properties, **LEGACY)
    ctx.catalog.save_service(replace(snapshot.definition, properties=stored), create=False)


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with make_server(
        tmp_path_factory.mktemp("badinput"),
        shared_data,
        _populate,
        users={"pub": ("publisher", "publisher-password-1")},
        **LIMITS,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=120) as c:
        yield c


def svc(name: str) -> str:
    return f"{ROOT}/rest/services/{name}/ImageServer"


def no_paths(server: LiveServer, response: httpx.Response) -> None:
    """No absolute path of the data folder, the catalog or the rasters in the answer."""
    text = response.text
    for path in (server.settings.data_dir, server.settings.data_dir.resolve(), server.data):
        assert str(path) not in text, text[:500]
    assert "catalog.db" not in text and "Traceback" not in text


def error(server: LiveServer, response: httpx.Response) -> dict[str, Any]:
    """The error of a JSON answer, checked for paths."""
    no_paths(server, response)
    assert response.status_code == 200  # ArcGIS: errors in a 200 (strict status is off)
    body = response.json()
    assert "error" in body, body
    err: dict[str, Any] = body["error"]
    return err


# --- numbers too large for the catalog ---------------------------------------------------------


@pytest.mark.parametrize(
    "raster_id",
    ["99999999999999999999", str(2**63), str(2**63 - 1), "0", "-1", "-99999999999999999999"],
)
@pytest.mark.parametrize("child", ["", "/info", "/info/keyProperties", "/thumbnail", "/image"])
def test_item_ids_out_of_range_are_not_found(
    server: LiveServer, client: httpx.Client, raster_id: str, child: str
) -> None:
    r = client.get(f"{svc('plain')}/{raster_id}{child}", params={"f": "json"})
    err = error(server, r)
    # unknown ids are 404; negative ones are not an id at all (400 unsupported operation)
    assert err["code"] == (400 if raster_id.startswith("-") else 404), err


@pytest.mark.parametrize("time", ["1e19", "-1e19", "1e19,2e19", "null,9e18", "NaN", "inf", "-inf"])
@pytest.mark.parametrize("operation", ["exportImage", "query", "identify", "getSamples"])
def test_times_out_of_range_are_refused(
    server: LiveServer, client: httpx.Client, time: str, operation: str
) -> None:
    params = {"f": "json", "time": time, "geometry": json.dumps(POINT)}
    err = error(server, client.get(f"{svc('plain')}/{operation}", params=params))
    assert err["code"] == 400 and "'time'" in err["details"][0], err


@pytest.mark.parametrize(
    "where",
    [
        "OBJECTID = 9223372036854775808",
        "OBJECTID > -9223372036854775809",
        "OBJECTID IN (1, 99999999999999999999999)",
        "OBJECTID = 1e400",
        "LowPS > 1e309",
        "OBJECTID = '99999999999999999999'",
        "ZOrder BETWEEN -1e999 AND 1",
    ],
)
def test_where_numbers_out_of_range_are_refused(
    server: LiveServer, client: httpx.Client, where: str
) -> None:
    err = error(server, client.get(f"{svc('plain')}/query", params={"f": "json", "where": where}))
    assert err["code"] == 400 and "out of range" in err["details"][0], err
    rule = json.dumps({"mosaicMethod": "esriMosaicNone", "where": where})
    err = error(
        server, client.get(f"{svc('plain')}/exportImage", params={"f": "json", "mosaicRule": rule})
    )
    assert err["code"] == 400, err


def test_the_largest_where_numbers_still_work(server: LiveServer, client: httpx.Client) -> None:
    for where in (
        "OBJECTID < 9223372036854775807",
        "OBJECTID > -9223372036854775807",
        "LowPS < 1e308",
    ):
        body = client.get(f"{svc('plain')}/query", params={"f": "json", "where": where}).json()
        assert len(body["features"]) == EXPECTED["plain"]["maxRecordCount"], (where, body)


@pytest.mark.parametrize(
    "ids",
    [
        "objectIds=99999999999999999999",
        'mosaicRule={"mosaicMethod":"esriMosaicLockRaster","lockRasterIds":[99999999999999999999]}',
    ],
)
def test_id_lists_out_of_range_are_refused(
    server: LiveServer, client: httpx.Client, ids: str
) -> None:
    name, value = ids.split("=", 1)
    operation = "query" if name == "objectIds" else "exportImage"
    err = error(
        server, client.get(f"{svc('plain')}/{operation}", params={"f": "json", name: value})
    )
    assert err["code"] == 400, err


# --- wrongly typed JSON members --------------------------------------------------------------


@pytest.mark.parametrize("sort_value", [[1, 2], {"a": 1}, [], {}, True])
@pytest.mark.parametrize("operation", ["exportImage", "identify", "getSamples"])
def test_sort_value_of_a_wrong_type_is_refused(
    server: LiveServer, client: httpx.Client, sort_value: Any, operation: str
) -> None:
    rule = {"mosaicMethod": "esriMosaicAttribute", "sortField": "OBJECTID", "sortValue": sort_value}
    params = {"f": "json", "mosaicRule": json.dumps(rule), "geometry": json.dumps(POINT)}
    err = error(server, client.get(f"{svc('plain')}/{operation}", params=params))
    assert err["code"] == 400 and "sortValue" in err["details"][0], err


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_parameters_refuse_nan_and_infinity(
    server: LiveServer, client: httpx.Client, constant: str
) -> None:
    geometry = f'{{"x": {constant}, "y": 2700000}}'
    err = error(
        server, client.get(f"{svc('plain')}/identify", params={"f": "json", "geometry": geometry})
    )
    assert err["code"] == 400 and constant in err["details"][0], err


def test_samples_over_a_needle_thin_polygon_are_bounded(
    server: LiveServer, client: httpx.Client
) -> None:
    """A polygon 1e30 units wide used to make getSamples loop ~1e14 times (a jammed pool)."""
    ring = [[1e30, 2700000], [200000, 2710000], [210000, 2710000], [1e30, 2700000]]
    params = {
        "f": "json",
        "geometry": json.dumps({"rings": [ring]}),
        "geometryType": "esriGeometryPolygon",
    }
    r = client.get(f"{svc('plain')}/getSamples", params=params, timeout=30)
    no_paths(server, r)
    assert len(r.json()["samples"]) <= EXPECTED["plain"]["maxSampleCount"]


def test_an_unknown_wkid_does_not_spoil_the_next_read(shared_data: Path, tmp_path: Path) -> None:
    """A failed CRS lookup must not leave GDAL's error state to the next read on that thread."""
    with make_server(tmp_path, shared_data, _populate, read_threads=1) as srv:
        with httpx.Client(base_url=srv.base, timeout=60) as c:
            identify = {"f": "json", "geometry": json.dumps(POINT)}
            before = c.get(f"{svc('plain')}/identify", params=identify).json()["value"]
            bad = c.get(f"{svc('plain')}/exportImage", params={"f": "json", "imageSR": "999999"})
            assert bad.json()["error"]["code"] == 400
            after = c.get(f"{svc('plain')}/identify", params=identify).json()["value"]
    assert before != "NoData" and after == before


# --- paths, methods, paging --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a" * 300, "a" * 300 + "/x.png", "x/" + "b" * 5000, "é" * 200])
def test_overlong_output_names_are_not_found(
    server: LiveServer, client: httpx.Client, name: str
) -> None:
    r = client.get(f"{ROOT}/rest/directories/arcgisoutput/{name}", params={"f": "json"})
    err = error(server, r)
    assert err["code"] == 404, err


def test_every_read_endpoint_accepts_get_and_post() -> None:
    """docs/rest-coverage.md promises GET and POST everywhere (the WebSocket aside)."""
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 40
    for route in routes:
        assert {"GET", "POST"} <= set(route.methods), route.path


@pytest.fixture(scope="module")
def token(client: httpx.Client) -> str:
    r = client.post(
        f"{ROOT}/tokens/generateToken",
        data={
            "username": "pub",
            "password": "publisher-password-1",
            "client": "requestip",
            "f": "json",
        },
    )
    return str(r.json()["token"])


def test_quarantine_and_viewer_answer_post(
    server: LiveServer, client: httpx.Client, token: str
) -> None:
    headers = {"X-Esri-Authorization": f"Bearer {token}"}
    r = client.post(f"{ROOT}/livemosaic/quarantine", data={"f": "json"}, headers=headers)
    no_paths(server, r)
    assert r.json() == {"files": [], "exceededTransferLimit": False}
    r = client.post(f"{ROOT}/livemosaic/viewer/plain")
    assert r.status_code == 200 and "livemosaic live viewer" in r.text
    r = client.post(f"{ROOT}/livemosaic/static/viewer/viewer.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")


def test_grouped_statistics_are_paged_by_max_record_count(
    server: LiveServer, client: httpx.Client
) -> None:
    stats = json.dumps(
        [{"statisticType": "count", "onStatisticField": "OBJECTID", "outStatisticFieldName": "n"}]
    )
    params = {"f": "json", "outStatistics": stats, "groupByFieldsForStatistics": "Name"}
    for name, cap in (("plain", 5), ("lowered", 3), ("raised", 5)):
        names: list[str] = []
        while True:  # page like an ArcGIS client: resultOffset until no exceededTransferLimit
            page = client.get(
                f"{svc(name)}/query", params={**params, "resultOffset": str(len(names))}
            ).json()
            assert 0 < len(page["features"]) <= cap, (name, page)
            names += [f["attributes"]["Name"] for f in page["features"]]
            if not page.get("exceededTransferLimit"):
                break
            assert len(page["features"]) == cap
        assert len(names) == len(set(names)) == 7, (name, names)


# --- service limits: advertised == enforced ------------------------------------------------


def advertised(client: httpx.Client, name: str) -> dict[str, int]:
    info = client.get(svc(name), params={"f": "json"}).json()
    keys = ("maxImageWidth", "maxImageHeight", "maxRecordCount", "maxMosaicImageCount")
    out = {k: int(info[k]) for k in keys}
    out["maxSampleCount"] = EXPECTED[name]["maxSampleCount"]  # not in the service JSON
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_advertised_limits_are_the_enforced_ones(
    server: LiveServer, client: httpx.Client, name: str
) -> None:
    """Each limit: the service JSON shows the server's value lowered (never raised) by the
    service's property, and a request one over it is refused or cut exactly there."""
    limits = advertised(client, name)
    assert limits == EXPECTED[name]
    base = svc(name)

    width, height = limits["maxImageWidth"], limits["maxImageHeight"]
    for size in (f"{width + 1},10", f"10,{height + 1}"):
        err = error(server, client.get(f"{base}/exportImage", params={"f": "json", "size": size}))
        assert err["code"] == 400 and "maxImageWidth x maxImageHeight" in " ".join(err["details"])
    for size in (f"{width},10", f"10,{height}"):
        ok = client.get(f"{base}/exportImage", params={"f": "json", "size": size}).json()
        assert "href" in ok, (size, ok)

    records = limits["maxRecordCount"]
    page = client.get(
        f"{base}/query", params={"f": "json", "where": "1=1", "resultRecordCount": str(records + 1)}
    ).json()
    assert len(page["features"]) == records and page["exceededTransferLimit"] is True
    found = client.get(
        f"{base}/identify",
        params={"f": "json", "geometry": json.dumps(POINT), "maxItemCount": str(records + 1)},
    ).json()
    assert len(found["catalogItems"]["features"]) <= records

    mosaic = limits["maxMosaicImageCount"]  # four items cover POINT: one over the lowest cap
    samples = client.get(
        f"{base}/getSamples",
        params={"f": "json", "geometry": json.dumps(POINT), "returnFirstValueOnly": "false"},
    ).json()["samples"]
    assert len(samples) == mosaic, samples

    cap = limits["maxSampleCount"]
    points = [[200000 + 10 * i, 2700000] for i in range(cap + 1)]
    over = {
        "f": "json",
        "geometryType": "esriGeometryMultipoint",
        "geometry": json.dumps({"points": points}),
    }
    err = error(server, client.get(f"{base}/getSamples", params=over))
    assert err["code"] == 400 and "maxSampleCount" in " ".join(err["details"])
    at = {**over, "geometry": json.dumps({"points": points[:cap]})}
    assert len(client.get(f"{base}/getSamples", params=at).json()["samples"]) == cap


def test_legacy_properties_are_reported_and_fall_back(
    server: LiveServer, client: httpx.Client
) -> None:
    problems = server.ctx.publisher.load_all()
    legacy = [p for p in problems if p.startswith("legacy:")]
    assert {key for key in LEGACY if LEGACY[key]} == {
        key for key in LEGACY if any(f"property {key}=" in p for p in legacy)
    }
    info = client.get(svc("legacy"), params={"f": "json"}).json()
    assert info["defaultCompressionQuality"] == 75
    assert info["allowedMosaicMethods"].startswith("NorthWest")
    r = client.get(
        f"{svc('legacy')}/exportImage", params={"f": "image", "size": "20,20", "format": "jpg"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("options", ["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000])
def test_deeply_nested_refresh_options_are_refused(
    server: LiveServer, client: httpx.Client, token: str, options: str
) -> None:
    r = client.post(
        f"{ROOT}/rest/services/System/PublishingTools/GPServer/Refresh%20Service/submitJob",
        data={
            "serviceName": "plain",
            "serviceType": "ImageServer",
            "refreshOptions": options,
            "f": "json",
        },
        headers={"X-Esri-Authorization": f"Bearer {token}"},
    )
    err = error(server, r)
    assert err["code"] == 400 and "refreshOptions" in err["details"][0], err


@pytest.mark.parametrize("nodata", ["3.4028235677973366e+38", "1e+308", "-1e+308", "inf"])
@pytest.mark.parametrize("pixel_type", ["", "F32", "U8"])
def test_nodata_beyond_the_pixel_type_is_no_error(
    server: LiveServer, client: httpx.Client, nodata: str, pixel_type: str
) -> None:
    """A noData no pixel can hold matches nothing (comparing it overflowed a float32 cast)."""
    params = {"f": "image", "format": "tiff", "size": "20,20", "noData": nodata}
    if pixel_type:
        params["pixelType"] = pixel_type
    r = client.get(f"{svc('climate')}/exportImage", params=params)
    no_paths(server, r)
    if r.headers["content-type"].startswith("application/json"):
        assert r.json()["error"]["code"] == 400, r.text  # a clear refusal is fine too
    else:
        assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
