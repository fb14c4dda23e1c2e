"""The three browser clients people use, in headless Chromium, against the demo service.

ArcGIS Maps SDK for JavaScript (``@arcgis/core`` ImageryLayer on a MapView), esri-leaflet
(``imageMapLayer``) and OpenLayers (``ImageArcGISRest``) come from npm (``clients/`` holds
their package-lock.json) and are bundled locally by ``clients/build.mjs``: no CDN, no portal.
Each page is served from its own origin (a static server on 127.0.0.1), so cross-origin
requests and CORS are exercised as in a real deployment.

Each client opens ``Demo/Landsat`` (the demo mosaic: four Landsat tiles, as ``serve --demo``
publishes them) and ``Secure/Landsat`` (the same dataset, secured), where it passes a token
the way that client does: the IdentityManager (``registerToken``) for the SDK, the layer's
``token`` option for esri-leaflet, ``params.token`` for OpenLayers. A client passes when its
layer loads, every ``exportImage`` answer is an image, and the map is not blank (pixels of a
screenshot of the map), and no request leaves the machine. The SDK also opens a 90-degree
global grid whose file reaches past the poles, at its (clamped) service extent.

Skipped only when Chromium, Playwright, node or the npm packages are missing and ``CI`` is
unset; under CI that fails.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.warp import transform_bounds

from livemosaic.app import build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from tests.browser.npm import node, npm_project, unavailable
from tests.e2e.test_viewer import CHROMIUM_ARGS
from tests.rest.grids import GRIDS, write_grid
from tests.rest.secure import Running, add_users, running, sign_in, site_settings

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Page, Route, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]  # marks playwright as missing

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
CLIENTS = ("arcgis", "leaflet", "openlayers")
TIMEOUT_MS = 60_000
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM")


def build_clients() -> Path:
    """The client pages: ``node build.mjs`` (a no-op when dist/ is up to date)."""
    subprocess.run([node(), "build.mjs"], cwd=npm_project(CLIENTS_DIR), check=True)
    return CLIENTS_DIR / "dist"


@pytest.fixture(scope="module")
def chromium() -> str:
    if sync_playwright is None:
        unavailable("playwright is not installed")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("the Debian chromium package is not installed")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    """The built client pages, served on their own origin (http://127.0.0.1:<port>)."""
    dist = build_clients()
    handler = functools.partial(_QuietHandler, directory=str(dist))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the class attribute the base class reads
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """No access log on stderr."""


@dataclass
class Site:
    """The running server, a viewer's token and the demo's bounds in degrees."""

    server: Running
    token: str
    bounds: tuple[float, float, float, float]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("clients")
    demo = work / "demo"
    demo.mkdir()
    package = resources.files("livemosaic") / "demo"
    tifs = []
    for entry in package.iterdir():
        if entry.name.endswith(".tif"):
            with resources.as_file(entry) as src:
                tifs.append(Path(shutil.copyfile(src, demo / entry.name)))
    ctx = build_context(site_settings(work, demo, data_folders=[demo, work / "grids"]))
    ing = Ingestor(ctx.catalog, ctx.source, [demo, work / "grids"])
    ing.create_dataset("demo", "EPSG:32618")
    assert ing.add_paths("demo", sorted(tifs)).added == 4
    ctx.publisher.publish(ServiceDefinition(name="Landsat", folder="Demo", dataset="demo"))
    ctx.publisher.publish(
        ServiceDefinition(name="Landsat", folder="Secure", dataset="demo", private=True)
    )
    grids = work / "grids"
    grids.mkdir()
    driver, filename, *shape = GRIDS["g90"]
    write_grid(grids / filename, driver, *shape)
    ing.create_dataset("g90", "EPSG:4326")
    assert ing.add_paths("g90", [grids / filename]).added == 1
    ctx.publisher.publish(ServiceDefinition(name="g90", folder="Global", dataset="g90"))
    add_users(ctx.users)
    west, south, east, north = (np.inf, np.inf, -np.inf, -np.inf)
    for tif in tifs:
        with rasterio.open(tif) as ds:
            w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        west, south, east, north = min(west, w), min(south, s), max(east, e), max(north, n)
    try:
        with running(ctx) as server:
            yield Site(server, sign_in(server.client, "viewer"), (west, south, east, north))
    finally:
        ctx.close()


@pytest.fixture
def page(chromium: str) -> Iterator[Page]:
    assert sync_playwright is not None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 800, "height": 600})
        finally:
            browser.close()


Export = tuple[str, int, str, bytes]  # url, status, content type, first bytes


def watch_exports(page: Page) -> list[Export]:
    """The exportImage answers the page receives, as they reach it (checked on the way)."""
    exports: list[Export] = []

    def check(route: Route) -> None:
        response = route.fetch()
        body = response.body()
        ctype = response.headers.get("content-type", "")
        exports.append((route.request.url, response.status, ctype, body[:16]))
        with contextlib.suppress(PlaywrightError):  # the page may have dropped the request
            route.fulfill(response=response, body=body)

    page.route(re.compile(r"/exportimage", re.IGNORECASE), check)
    return exports


def is_remote(url: str) -> bool:
    """True for an http(s) or ws(s) URL that does not point at this machine."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1"


def settle(page: Page) -> None:
    """Wait two animation frames so the last image is on screen."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def painted_share(png: bytes) -> float:
    """Share of pixels of a screenshot that are not the page's white background."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return float((np.abs(rgb - 255).sum(axis=2) > 30).mean())


@pytest.mark.parametrize("secured", [False, True], ids=["public", "secured"])
@pytest.mark.parametrize("client", CLIENTS)
def test_client_draws_the_demo_service(
    page: Page, pages: str, site: Site, client: str, secured: bool, tmp_path: Path
) -> None:
    service = f"{site.server.base}/arcgis/rest/services/{'Secure' if secured else 'Demo'}/Landsat/ImageServer"
    query: dict[str, str] = {"service": service, "bounds": ",".join(map(str, site.bounds))}
    if secured:
        query["token"] = site.token
    exports = watch_exports(page)
    elsewhere: list[str] = []  # no CDN, no portal: every request stays on this machine
    page.on("request", lambda r: elsewhere.append(r.url) if is_remote(r.url) else None)
    page.goto(f"{pages}/{client}.html?{urlencode(query)}")
    page.wait_for_function("() => window.lmClient && window.lmClient.status !== 'loading'",
                           timeout=TIMEOUT_MS)  # fmt: skip
    state = page.evaluate("() => window.lmClient")
    assert state["status"] == "drawn", state
    assert exports, f"{client} sent no exportImage request; events: {state['events']}"
    for url, status, ctype, head in exports:
        assert status == 200, (url, status)
        assert ctype.startswith("image/") and head.startswith(IMAGE_MAGIC), (url, ctype, head)
        if secured:
            assert "token=" in url, url
    assert not elsewhere, f"{client} reached out of the machine: {elsewhere[:5]}"
    settle(page)
    png = page.locator("#map").screenshot()
    (tmp_path / f"{client}.png").write_bytes(png)
    share = painted_share(png)
    assert share > 0.3, f"{client}: only {share:.0%} of the map is painted ({tmp_path})"


def test_secured_service_without_token_draws_nothing(page: Page, pages: str, site: Site) -> None:
    """The check above means something: without its token, the secured layer fails."""
    service = f"{site.server.base}/arcgis/rest/services/Secure/Landsat/ImageServer"
    query = {"service": service, "bounds": ",".join(map(str, site.bounds))}
    page.goto(f"{pages}/openlayers.html?{urlencode(query)}")
    page.wait_for_function("() => window.lmClient && window.lmClient.status !== 'loading'",
                           timeout=TIMEOUT_MS)  # fmt: skip
    assert page.evaluate("() => window.lmClient.status") == "error"


def test_sdk_draws_a_global_grid_past_the_poles(page: Page, pages: str, site: Site) -> None:
    """A 90-degree global grid (latitudes -135..135 in the file) opens at its service extent."""
    service = f"{site.server.base}/arcgis/rest/services/Global/g90/ImageServer"
    page.goto(f"{pages}/arcgis.html?{urlencode({'service': service})}")
    page.wait_for_function("() => window.lmClient && window.lmClient.status !== 'loading'",
                           timeout=TIMEOUT_MS)  # fmt: skip
    state = page.evaluate("() => window.lmClient")
    assert state["status"] == "drawn", state
    settle(page)
    share = painted_share(page.locator("#map").screenshot())
    assert share > 0.3, f"only {share:.0%} of the map is painted; events: {state['events']}"
