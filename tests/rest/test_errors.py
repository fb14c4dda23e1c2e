"""The error envelope (spec 3) on every endpoint; hostile input never crashes the server."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from livemosaic.app import create_app
from livemosaic.rest.middleware import CrashMiddleware
from tests.rest.conftest import BODY_LIMIT
from tests.rest.helpers import LiveServer, error_of, ok_json

UNABLE = "Unable to complete operation."
UNSUPPORTED = "Requested operation is not supported by this service."


def bad(
    client: httpx.Client, path: str, params: dict[str, Any], name: str, *, post: bool = False
) -> dict[str, Any]:
    params = {"f": "json", **params}
    r = client.post(path, data=params) if post else client.get(path, params=params)
    assert r.status_code == 200, r.text[:300]
    err = error_of(r)
    assert err["code"] == 400, err
    assert err["message"] == UNABLE, err
    assert any(name.lower() in d.lower() for d in err["details"]), (name, err)
    return err


EXPORT_CASES = [
    ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "a,b,c,d"}, "bbox"),
    ({"bbox": "5,5,5,1"}, "bbox"),  # zero width (corners in any order are fine)
    ({"bbox": '{"xmin": 1'}, "bbox"),
    ({"bboxSR": "abc"}, "bboxSR"),
    ({"imageSR": "999999"}, "imageSR"),
    ({"imageSR": '{"wkt": "nonsense"}'}, "imageSR"),
    ({"size": "0,10"}, "size"),
    ({"size": "abc"}, "size"),
    ({"format": "xyz"}, "format"),
    ({"pixelType": "U9"}, "pixelType"),
    ({"interpolation": "RSP_Fancy"}, "interpolation"),
    ({"bandIds": "7"}, "bandIds"),
    ({"bandIds": "a"}, "bandIds"),
    ({"noData": "x"}, "noData"),
    ({"noDataInterpretation": "esriNoDataMatchSome"}, "noDataInterpretation"),
    ({"mosaicRule": "{bad json"}, "mosaicRule"),
    ({"mosaicRule": "[1]"}, "mosaicRule"),
    ({"mosaicRule": '{"mosaicMethod": "esriMosaicFoo"}'}, "mosaicRule"),
    ({"mosaicRule": '{"mosaicMethod": "esriMosaicAttribute"}'}, "mosaicRule"),  # not allowed on dem
    ({"mosaicRule": '{"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_WHATEVER"}'}, "mosaicRule"),
    ({"mosaicRule": '{"mosaicMethod": "esriMosaicNone", "where": "Name = "}'}, "mosaicRule"),
    ({"mosaicRule": '{"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": ["x"]}'}, "mosaicRule"),
    ({"mosaicRule": '{"multidimensionalDefinition": [{"variableName": "x", "dimensionName": "StdTime", "values": ["soon"]}]}'}, "mosaicRule"),
    ({"renderingRule": '{"rasterFunction": "Foo"}'}, "renderingRule"),
    ({"renderingRule": '{"rasterFunctionDefinition": {}}'}, "renderingRule"),
    ({"renderingRule": "{}"}, "renderingRule"),
    ({"time": "abc"}, "time"),
    ({"time": "5,1"}, "time"),
    ({"compressionQuality": "101"}, "compressionQuality"),
    ({"compression": "ZIPPY"}, "compression"),
    ({"lercVersion": "3"}, "lercVersion"),
    ({"adjustAspectRatio": "maybe"}, "adjustAspectRatio"),
    ({"f": "xml"}, "'f'"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "name"), EXPORT_CASES)
def test_export_bad_parameters(
    client: httpx.Client, live: LiveServer, params: dict[str, str], name: str
) -> None:
    bad(client, live.svc("dem") + "/exportImage", {"f": "image", **params}, name)


def test_templates_message(client: httpx.Client, live: LiveServer) -> None:
    err = bad(
        client,
        live.svc("dem") + "/exportImage",
        {"renderingRule": '{"rasterFunctionDefinition": {}}'},
        "renderingRule",
    )
    assert any("Raster function templates are not supported" in d for d in err["details"])


QUERY_CASES = [
    ({"where": "Name ="}, "where"),
    ({"where": "DROP TABLE x"}, "where"),
    ({"outFields": "Bogus"}, "outFields"),
    ({"orderByFields": "Bogus DESC"}, "orderByFields"),
    ({"orderByFields": "Name SIDEWAYS"}, "orderByFields"),
    ({"objectIds": "1,a"}, "objectIds"),
    ({"resultOffset": "-1"}, "resultOffset"),
    ({"resultRecordCount": "0"}, "resultRecordCount"),
    ({"geometry": "{bad"}, "geometry"),
    ({"geometry": "1,2,3"}, "geometry"),
    ({"geometryType": "esriGeometryBlob", "geometry": "1,2"}, "geometryType"),
    ({"spatialRel": "esriSpatialRelNear"}, "spatialRel"),
    ({"outSR": "notasr"}, "outSR"),
    ({"inSR": "-4", "geometry": "1,2"}, "inSR"),
    ({"returnGeometry": "yes"}, "returnGeometry"),
    ({"time": "x,y"}, "time"),
    ({"outStatistics": '[{"statisticType": "median", "onStatisticField": "LowPS"}]'}, "outStatistics"),
    ({"multidimensionalDefinition": "{"}, "multidimensionalDefinition"),
    ({"pixelSize": "-1,-1"}, "pixelSize"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "name"), QUERY_CASES)
def test_query_bad_parameters(
    client: httpx.Client, live: LiveServer, params: dict[str, str], name: str
) -> None:
    bad(client, live.svc("imagery") + "/query", params, name, post=True)


PIXEL_CASES = [
    ("identify", {}, "geometry"),
    ("identify", {"geometry": "1"}, "geometry"),
    ("identify", {"geometry": '{"x": "a", "y": 1}'}, "geometry"),
    ("identify", {"geometry": "1,2", "maxItemCount": "0"}, "maxItemCount"),
    ("identify", {"geometry": "1,2", "renderingRules": "{"}, "renderingRules"),
    ("getSamples", {}, "geometry"),
    ("getSamples", {"geometry": "1,2", "sampleCount": "0"}, "sampleCount"),
    ("getSamples", {"geometry": '{"paths": [[[0,0],[1,1]]]}', "sampleDistance": "-1"}, "sampleDistance"),
    ("getSamples", {"geometry": "1,2", "interpolation": "sharp"}, "interpolation"),
    ("getSamples", {"geometry": "1,2", "returnFirstValueOnly": "perhaps"}, "returnFirstValueOnly"),
    ("multidimensionalInfo", {"returnDimensionValues": "sometimes"}, "returnDimensionValues"),
    ("statistics", {"variable": "nope"}, "variable"),
    ("histograms", {"variable": "nope"}, "variable"),
]  # fmt: skip


@pytest.mark.parametrize(("op", "params", "name"), PIXEL_CASES)
def test_other_operations_bad_parameters(
    client: httpx.Client, live: LiveServer, op: str, params: dict[str, str], name: str
) -> None:
    bad(client, live.svc("climate") + "/" + op, params, name)


def test_oversize_image_names_the_limit(client: httpx.Client, live: LiveServer) -> None:
    w = live.settings.max_image_width + 1
    err = bad(
        client, live.svc("dem") + "/exportImage", {"f": "image", "size": f"{w},10"}, "maxImageWidth"
    )
    assert any(str(live.settings.max_image_width) in d for d in err["details"])


def test_not_found_and_unsupported(client: httpx.Client, live: LiveServer) -> None:
    cases = [
        ("/arcgis/rest/services/nope/ImageServer/exportImage", 404, "Service not found."),
        ("/arcgis/rest/services/Nope/nope/ImageServer/query", 404, "Service not found."),
        ("/arcgis/rest/services/NoFolder", 404, "Folder not found."),
        (live.svc("dem") + "/999999/info", 404, None),
        (live.svc("dem") + "/notAnOperation", 400, UNSUPPORTED),
        (live.svc("dem") + "/computeTiePoints/deeper", 400, UNSUPPORTED),
        (live.svc("dem") + "/multidimensionalInfo", 400, UNSUPPORTED),
        (live.svc("imageonly") + "/query", 400, UNSUPPORTED),
        (live.svc("imageonly") + "/1", 400, UNSUPPORTED),
        ("/arcgis/nothing/here", 404, None),
    ]
    for path, code, message in cases:
        err = error_of(client.get(path, params={"f": "json"}))
        assert err["code"] == code, (path, err)
        if message:
            assert err["message"] == message, (path, err)
    tile = error_of(client.get(live.svc("dem") + "/tile/3/1/2", params={"f": "json"}))
    assert tile["code"] == 400 and any("tile" in d for d in tile["details"])


def test_jsonp_errors_and_bad_callbacks(client: httpx.Client, live: LiveServer) -> None:
    r = client.get(live.svc("nope"), params={"f": "json", "callback": "cb.x[0]"})
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.text.startswith("cb.x[0](") and json.loads(r.text[8:-2])["error"]["code"] == 404
    evil = client.get("/arcgis/rest/services", params={"f": "json", "callback": "alert(1)//"})
    assert "alert" not in evil.text and evil.headers["content-type"].startswith("application/json")
    assert error_of(evil)["code"] == 400


def test_html_errors_are_pages(client: httpx.Client, live: LiveServer) -> None:
    r = client.get(live.svc("nope"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Service not found." in r.text


def test_image_errors_are_json(client: httpx.Client, live: LiveServer) -> None:
    r = client.get(live.svc("dem") + "/exportImage", params={"f": "image", "size": "0,0"})
    assert r.headers["content-type"].startswith("application/json")
    assert error_of(r)["code"] == 400


def test_huge_bodies_are_refused(client: httpx.Client, live: LiveServer) -> None:
    filler = "x" * (BODY_LIMIT + 10)
    r = client.post("/arcgis/rest/services?f=json", data={"where": filler})
    err = error_of(r)
    assert err["code"] == 400 and any(str(BODY_LIMIT) in d for d in err["details"])

    def chunks() -> Any:
        for _ in range(40):
            yield b"where=" + b"y" * 10_000 + b"&"

    r = client.post(live.svc("imagery") + "/query?f=json", content=chunks(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    err = error_of(r)
    assert err["code"] == 400 and any(str(BODY_LIMIT) in d for d in err["details"])
    assert ok_json(client.get("/arcgis/rest/services", params={"f": "json"}))["folders"]


def test_malformed_bodies(client: httpx.Client, live: LiveServer) -> None:
    r = client.post(live.svc("imagery") + "/query", content=b"f=json&where=%ZZ%%&&=",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 200
    for ctype in ("multipart/form-data; boundary=zzz", "multipart/form-data"):
        r = client.post(live.svc("imagery") + "/query?f=json", content=b"--nope\r\ngarbage",
                        headers={"Content-Type": ctype})  # fmt: skip
        err = error_of(r)
        assert err["code"] == 400 and any("body" in d for d in err["details"]), err
    assert ok_json(client.get("/arcgis/rest/services", params={"f": "json"}))["folders"]


def test_other_methods_are_405(client: httpx.Client, live: LiveServer) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        r = client.request(method, live.svc("dem"), params={"f": "json"})
        assert r.status_code == 405
        assert error_of(r)["code"] == 405
        assert "GET" in r.headers["allow"]


def raw_get(live: LiveServer, path: str) -> tuple[int, bytes]:
    host, port = live.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


@pytest.mark.parametrize(
    "path",
    [
        "/arcgis/rest/directories/arcgisoutput/../../etc/passwd",
        "/arcgis/rest/directories/arcgisoutput/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/arcgis/rest/directories/arcgisoutput/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/arcgis/rest/directories/arcgisoutput/%252e%252e/%252e%252e/etc/passwd",
        "/arcgis/rest/directories/arcgisoutput/..\\..\\etc\\passwd",
        "/arcgis/rest/directories/arcgisoutput//etc/passwd",
        "/arcgis/rest/directories/arcgisoutput/%00/../../catalog.db",
        "/arcgis/rest/directories/arcgisoutput/../catalog.db",
    ],
)
def test_path_traversal_never_reads_outside(live: LiveServer, path: str) -> None:
    status, body = raw_get(live, path + "?f=json")
    assert b"root:" not in body and b"SQLite format" not in body
    assert status in (200, 400, 404)
    if status == 200:
        assert json.loads(body)["error"]["code"] in (400, 404)


def test_vanished_file_fails_cleanly(client: httpx.Client, live: LiveServer) -> None:
    r = client.get(
        live.svc("vanishing") + "/exportImage",
        params={"f": "image", "size": "20,20", "format": "png"},
    )
    # an unreadable file is skipped (and logged): the service keeps drawing, never leaks paths
    assert r.content.startswith(b"\x89PNG"), r.text
    assert ok_json(client.get(live.svc("vanishing"), params={"f": "json"}))["name"] == "vanishing"


def test_strict_http_status(live: LiveServer) -> None:
    strict = live.settings.model_copy(update={"strict_http_status": True})
    app = create_app(strict, live.ctx)
    plain = TestClient(app)  # no lifespan: the shared context stays open
    r = plain.get("/arcgis/rest/services/nope/ImageServer", params={"f": "json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    r = plain.get(
        "/arcgis/rest/services/dem/ImageServer/exportImage", params={"f": "image", "size": "x"}
    )
    assert r.status_code == 400
    r = plain.get("/arcgis/rest/services/stopped/ImageServer", params={"f": "json"})
    assert r.status_code == 500


def test_server_survives_garbage(live: LiveServer, client: httpx.Client) -> None:
    host, port = live.base.removeprefix("http://").split(":")
    for payload in (
        b"GARBAGE\r\n\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00\xff" * 100,
    ):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(1024)
            except OSError:
                pass
    assert ok_json(client.get("/arcgis/rest/services", params={"f": "json"}))["folders"]


def test_unexpected_exceptions_become_a_500_envelope_without_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing_app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("secret detail /srv/private/path")

    client = TestClient(CrashMiddleware(failing_app))
    r = client.get("/arcgis/rest/services/x/ImageServer", params={"f": "json"})
    err = error_of(r)
    assert err["code"] == 500 and err["message"] == UNABLE
    assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert "secret detail" in caplog.text  # the cause goes to the log
    page = client.get("/arcgis/rest/services/x/ImageServer")
    assert page.headers["content-type"].startswith("text/html") and "secret" not in page.text


def test_a_failing_middleware_is_a_500_envelope_too(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection: the authentication middleware itself raises (outside the routes)."""
    from livemosaic.rest import auth

    async def broken(self: Any, scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("secret detail /srv/private/path")

    app = create_app(live.settings, live.ctx)
    monkeypatch.setattr(auth.AuthMiddleware, "__call__", broken)
    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/arcgis/rest/services", params={"f": "json"})
    err = error_of(r)
    assert err["code"] == 500 and "secret" not in r.text and "Traceback" not in r.text
    assert "secret detail" in caplog.text
