"""The live viewer page and its bundled assets over real HTTP (the browser test is in tests/e2e)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from livemosaic.app import build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.rest.notify_hub import NotificationHub
from livemosaic.rest.viewer import STATIC_DIR
from livemosaic.settings import Settings
from tests.rest.ws_server import WsServer, serve


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WsServer]:
    work = tmp_path_factory.mktemp("viewer_page")
    settings = Settings(data_dir=work / "data", data_folders=[shared_data], root="ArcGIS")
    ctx = build_context(settings)
    ing = Ingestor(ctx.catalog, ctx.source, [shared_data])
    ing.create_dataset("tiny")
    assert ing.add_paths("tiny", [shared_data / "size/byte.tif"]).added == 1
    ctx.publisher.publish(ServiceDefinition("Tiny", "tiny", folder="Live"))
    ctx.publisher.publish(ServiceDefinition("rooted", "tiny"))
    with serve(ctx, NotificationHub(ctx.registry)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: WsServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, trust_env=False, timeout=30) as client:
        yield client


def page_config(html: str) -> dict:
    match = re.search(
        r'<script id="livemosaic-config" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, html[:500]
    return json.loads(match.group(1))


def test_viewer_page_names_the_service_and_its_urls(http: httpx.Client):
    r = http.get("/arcgis/livemosaic/viewer/live/tiny")  # any case: paths are normalised
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    config = page_config(r.text)
    assert config["service"] == "Live/Tiny.ImageServer"
    assert config["serviceUrl"] == "/ArcGIS/rest/services/Live/Tiny/ImageServer"
    assert config["wsPath"] == "/arcgis/livemosaic/ws"  # the routed (lower-case) spelling
    assert config["version"] == 1
    info = http.get(config["serviceUrl"], params={"f": "json"}).json()
    assert info["name"] == "Tiny"
    for url in re.findall(r'(?:src|href)="(/[^"]+/static/viewer/[^"]+)"', r.text):
        assert http.get(url).status_code == 200, url
    root = page_config(http.get("/arcgis/livemosaic/viewer/rooted").text)
    assert root["service"] == "rooted.ImageServer"


def test_viewer_page_of_a_missing_service_is_an_error(http: httpx.Client):
    r = http.get("/arcgis/livemosaic/viewer/live/nothing", params={"f": "json"})
    body = r.json()
    assert body["error"]["code"] == 404
    assert "nothing" in " ".join(body["error"]["details"]).lower()


@pytest.mark.parametrize(
    ("name", "media"),
    [
        ("viewer.js", "text/javascript"),
        ("viewer.css", "text/css"),
        ("third-party-licenses.txt", "text/plain"),
    ],
)
def test_bundled_assets_are_served(http: httpx.Client, name: str, media: str):
    r = http.get(f"/arcgis/livemosaic/static/viewer/{name}")
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert r.content == (STATIC_DIR / name).read_bytes()


def test_bundle_carries_its_licences_and_no_remote_urls():
    licences = (STATIC_DIR / "third-party-licenses.txt").read_text()
    assert "ol " in licences and "BSD-2-Clause" in licences
    script = (STATIC_DIR / "viewer.js").read_text()
    # no tile servers or CDNs: the page must work on a closed network
    for host in ("openstreetmap", "tile.osm", "unpkg.com", "jsdelivr", "cdnjs", "googleapis"):
        assert host not in script, host


def test_unknown_asset_is_refused(http: httpx.Client):
    r = http.get("/arcgis/livemosaic/static/viewer/secret.py", params={"f": "json"})
    assert r.json()["error"]["code"] == 404
    r = http.get("/arcgis/livemosaic/static/viewer/..%2F..%2Fnotify.py", params={"f": "json"})
    assert r.json()["error"]["code"] == 404
