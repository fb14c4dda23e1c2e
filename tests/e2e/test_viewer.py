"""The live viewer in headless Chromium (Debian package, driven by Playwright).

A real server runs on 127.0.0.1 (uvicorn in a thread, WebSockets on) with watched folders,
as ``livemosaic serve --watch rules.toml`` runs it: ``in/watch`` feeds ``Live/watch`` and
``in/ndvi`` feeds ``Live/ndvi``. The page is opened once, then a raster is dropped into the
watched folder (written as ``name.part``, then renamed); the watcher ingests it and
refreshes the service, and without a reload the page must redraw: the region of the new
raster turns from empty to imagery in a screenshot, and for a dated file the time slider's
range grows. Every wait is bounded.

The watcher refreshes a service only when its summary changes (extent, resolution, time
extent, dimensions), so the dropped RGB tile lies outside the mosaic it joins: the extent grows.

Skipped only when Chromium or Playwright is missing and ``CI`` is unset; under CI that fails.
Never run ``playwright install``: the browser is Debian's ``chromium``.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from PIL import Image

from livemosaic.app import AppContext, build_context
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.rest.notify_hub import NotificationHub
from livemosaic.settings import Settings
from tests.rest.test_thematic import write_land_cover
from tests.rest.ws_server import WsServer, serve

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]  # marks playwright as missing

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NDVI_PATTERN = r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
NDVI_LAST = "TERRA_MODIS_012010_NDVI_2014-02-18.jp2"
NDVI_LAST_MS = 1392681600000  # 2014-02-18T00:00:00Z
WEST = ("mosaic/rgb1.tif", "mosaic/rgb3.tif")  # the mosaic the page opens on
DROPPED = "mosaic/rgb4.tif"  # south-east of it: dropping it extends the mosaic east
BACKGROUND = np.array([0xE9, 0xEE, 0xF2])  # .lm-map background in viewer.css
TIMEOUT_MS = 30_000
RULES = """
[defaults]
settle_seconds = 0.3
batch_window_seconds = 0.1
rescan_seconds = 60

[[watch]]
folder = "in/watch"
dataset = "watch"
service = "Live/watch"

[[watch]]
folder = "in/ndvi"
dataset = "ndvi"
service = "Live/ndvi"
"""


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason} (required under CI: apt-get install -y chromium; pip install playwright)"
        )
    pytest.skip(reason)


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
def ctx(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    work = tmp_path_factory.mktemp("viewer")
    for sub in ("watch", "ndvi"):
        (work / "in" / sub).mkdir(parents=True)
    (work / "rules.toml").write_text(RULES)
    settings = Settings(
        data_dir=work / "data",
        data_folders=[work / "in", shared_data],
        root="arcgis",
        watch_config=work / "rules.toml",
    )
    ctx = build_context(settings)
    assert [r.dataset for r in ctx.watch_rules] == ["watch", "ndvi"]
    ing = Ingestor(ctx.catalog, ctx.source, [shared_data, work / "in"])
    ing.create_dataset("watch")
    report = ing.add_paths("watch", [shared_data / rel for rel in WEST])
    assert report.added == 2, report
    ing.create_dataset("ndvi", time_pattern=NDVI_PATTERN)
    dates = sorted((shared_data / "timeseries/modis_ndvi").glob("*.jp2"))
    report = ing.add_paths("ndvi", [p for p in dates if p.name != NDVI_LAST])
    assert report.added == 5, report
    (work / "in" / "landcover").mkdir()
    write_land_cover(work / "in" / "landcover" / "classes.tif")
    ing.create_dataset("landcover")
    assert ing.add_paths("landcover", [work / "in" / "landcover"]).added == 1
    live = {"hasLiveData": "true"}
    ctx.publisher.publish(ServiceDefinition("landcover", "landcover", folder="Live"))
    ctx.publisher.publish(ServiceDefinition("watch", "watch", folder="Live", properties=live))
    ctx.publisher.publish(ServiceDefinition("ndvi", "ndvi", folder="Live", properties=live))
    yield ctx


@pytest.fixture(scope="module")
def server(ctx: AppContext) -> Iterator[WsServer]:
    with serve(ctx, NotificationHub(ctx.registry, heartbeat_seconds=2.0)) as srv:
        assert ctx.watcher is not None, "the server does not watch its folders"
        assert ctx.watcher.wait_idle(timeout=30), "the watcher did not catch up"
        yield srv


def watched(ctx: AppContext, dataset: str) -> Path:
    """The folder the running server watches for ``dataset``."""
    (rule,) = (r for r in ctx.watch_rules if r.dataset == dataset)
    return rule.folder


def drop(source: Path, folder: Path) -> Path:
    """Deliver a copy of ``source`` into a watched folder: write ``name.part``, then rename."""
    target = folder / source.name
    part = target.with_name(target.name + ".part")
    shutil.copyfile(source, part)
    os.replace(part, target)
    return target


def wait_for_refresh(ctx: AppContext, folder: str, name: str, after: int, dropped: Path) -> int:
    """The version the watcher's refresh published after ``after`` (bounded wait)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        snapshot = ctx.registry.find(folder, name)
        if snapshot is not None and snapshot.version > after:
            return snapshot.version
        if time.monotonic() > deadline:
            watcher = ctx.watcher
            reports = watcher.reports if watcher is not None else "no watcher"
            raise AssertionError(
                f"{folder}/{name} was not refreshed within {TIMEOUT_MS} ms of dropping "
                f"{dropped}; watcher reports: {reports}"
            )
        time.sleep(0.05)


@pytest.fixture
def page(chromium: str) -> Iterator[Page]:
    assert sync_playwright is not None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 750})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert not errors, errors
        finally:
            browser.close()


def open_viewer(page: Page, server: WsServer, service: str) -> None:
    """Open the page and wait until it is live and has drawn its first image."""
    page.goto(server.viewer_url(service))
    page.wait_for_function(
        "() => window.livemosaicViewer && livemosaicViewer.state.imageLoads > 0"
        " && document.body.dataset.status === 'live'",
        timeout=TIMEOUT_MS,
    )
    settle(page)
    page.evaluate("() => { window.__notReloaded = true; }")


def settle(page: Page) -> None:
    """Wait two animation frames so the last loaded image is on the canvas."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def look_at(page: Page, extent: tuple[float, float, float, float]) -> None:
    """Move the map to ``extent`` as a user would, and wait until the image there is drawn."""
    loads = page.evaluate("() => livemosaicViewer.state.imageLoads")
    page.evaluate(
        "(extent) => livemosaicViewer.map.getView().fit(extent, {padding: [16, 16, 16, 16]})",
        list(extent),
    )
    page.wait_for_function(f"() => livemosaicViewer.state.imageLoads > {loads}", timeout=TIMEOUT_MS)
    settle(page)
    assert page.evaluate("() => livemosaicViewer.state.userMoved"), "the map did not move"


def wait_for_version(page: Page, version: int) -> None:
    page.wait_for_function(
        f"() => livemosaicViewer.state.generation >= {version}"
        f" && livemosaicViewer.state.imageGeneration >= {version}",
        timeout=TIMEOUT_MS,
    )
    settle(page)
    assert page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"


def map_shot(page: Page, path: Path) -> np.ndarray:
    png = page.locator("#lm-map").screenshot()
    path.write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def inner_box(page: Page, bounds: Any, margin: float = 0.25) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1) of the middle of a raster's bounds on the map."""
    w, h = bounds.right - bounds.left, bounds.top - bounds.bottom
    corners = [
        (bounds.left + margin * w, bounds.top - margin * h),
        (bounds.right - margin * w, bounds.bottom + margin * h),
    ]
    (x0, y0), (x1, y1) = (
        page.evaluate(f"() => livemosaicViewer.pixelOf({x}, {y})") for x, y in corners
    )
    box = (round(x0), round(y0), round(x1), round(y1))
    assert box[2] - box[0] >= 20 and box[3] - box[1] >= 20, box
    return box


def valid_share(path: Path, margin: float = 0.25) -> float:
    """Share of valid (not nodata) pixels in the middle of a raster, as ``inner_box`` frames it."""
    with rasterio.open(path) as ds:
        mask = ds.dataset_mask() > 0
    h, w = mask.shape
    return float(
        mask[
            round(margin * h) : round((1 - margin) * h), round(margin * w) : round((1 - margin) * w)
        ].mean()
    )


def painted(shot: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Share of pixels in ``box`` that are not the map background (grid lines are thin)."""
    x0, y0, x1, y1 = box
    region = shot[y0:y1, x0:x1]
    differs = np.abs(region - BACKGROUND).sum(axis=2) > 40
    return float(differs.mean())


def test_a_dropped_raster_appears_without_reload(
    page: Page, server: WsServer, ctx: AppContext, shared_data: Path, tmp_path: Path
) -> None:
    open_viewer(page, server, "Live/watch")
    shown = page.evaluate("() => livemosaicViewer.state.generation")
    new_file = shared_data / DROPPED
    with rasterio.open(new_file) as ds:
        new_bounds = ds.bounds
    old_extent = page.evaluate("() => livemosaicViewer.state.info.extent")
    assert new_bounds.right > old_extent["xmax"] + 1000, "the drop must extend the mosaic"
    # the user looks at the mosaic and the empty place east of it (the page keeps this view)
    look_at(
        page,
        (old_extent["xmin"], old_extent["ymin"], new_bounds.right, old_extent["ymax"]),
    )
    new_box = inner_box(page, new_bounds)
    with rasterio.open(shared_data / WEST[0]) as ds:
        old_box = inner_box(page, ds.bounds)
    before = map_shot(page, tmp_path / "before.png")
    assert painted(before, old_box) > valid_share(shared_data / WEST[0]) - 0.05, (
        "the existing imagery is not drawn"
    )
    assert painted(before, new_box) < 0.1, "the new raster's region is not empty before"

    target = drop(new_file, watched(ctx, "watch"))
    version = wait_for_refresh(ctx, "Live", "watch", shown, target)
    assert ctx.catalog.file_state("watch", str(target)) is not None, "not ingested by the watcher"
    wait_for_version(page, version)

    after = map_shot(page, tmp_path / "after.png")
    expected = valid_share(new_file)
    assert expected > 0.5
    assert painted(after, new_box) > expected - 0.05, f"the new raster is not drawn; see {tmp_path}"
    x0, y0, x1, y1 = old_box
    unchanged = np.abs(after[y0:y1, x0:x1] - before[y0:y1, x0:x1]).sum(axis=2) < 30
    assert unchanged.mean() > 0.9, "the rest of the image should stay as it was"
    extent = page.evaluate("() => livemosaicViewer.state.info.extent")
    assert extent["xmax"] == pytest.approx(new_bounds.right, abs=1.0), "the extent is not updated"
    assert extent["xmin"] == pytest.approx(old_extent["xmin"], abs=1.0)
    assert page.locator("#lm-generation").inner_text() == f"v{version}"
    assert "itemCount" in page.locator("#lm-log").inner_text()


def test_time_slider_follows_a_new_date(
    page: Page, server: WsServer, ctx: AppContext, shared_data: Path
) -> None:
    open_viewer(page, server, "Live/ndvi")
    slider = page.locator("#lm-time-slider")
    start_before = int(slider.get_attribute("data-start") or 0)
    end_before = int(slider.get_attribute("data-end") or 0)
    stops_before = int(slider.get_attribute("data-stops") or 0)
    assert stops_before == 5 and end_before < NDVI_LAST_MS
    shown = page.evaluate("() => livemosaicViewer.state.generation")

    target = drop(shared_data / "timeseries/modis_ndvi" / NDVI_LAST, watched(ctx, "ndvi"))
    version = wait_for_refresh(ctx, "Live", "ndvi", shown, target)
    assert ctx.catalog.file_state("ndvi", str(target)) is not None, "not ingested by the watcher"
    wait_for_version(page, version)

    assert int(slider.get_attribute("data-start") or 0) == start_before
    assert int(slider.get_attribute("data-end") or 0) == NDVI_LAST_MS
    assert int(slider.get_attribute("data-stops") or 0) == stops_before + 1
    assert slider.input_value() == slider.get_attribute("max") == "5"  # follows the latest
    assert page.locator("#lm-time-label").inner_text() == "2014-02-18"
    assert page.locator("#lm-time-end").inner_text() == "2014-02-18"
    last_request = page.evaluate("() => livemosaicViewer.state.imageGeneration")
    assert last_request >= version


def test_reconnects_with_back_off_and_catches_up(
    page: Page, server: WsServer, ctx: AppContext
) -> None:
    open_viewer(page, server, "Live/watch")
    shown = page.evaluate("() => livemosaicViewer.state.generation")
    hub = server.hub
    loop = hub.loop
    assert loop is not None
    server.app.state.notify_hub = None  # handshakes are refused while the hub is away
    try:
        asyncio.run_coroutine_threadsafe(hub.stop(), loop).result(timeout=10)
        page.wait_for_function(
            "() => document.body.dataset.status === 'offline'", timeout=TIMEOUT_MS
        )
        _old, new = ctx.publisher.republish("Live", "watch")  # missed by the page
        page.wait_for_function("() => livemosaicViewer.socket.attempt >= 3", timeout=TIMEOUT_MS)
        assert page.evaluate("() => livemosaicViewer.state.generation") == shown
    finally:
        server.app.state.notify_hub = hub
    wait_for_version(page, new.version)  # from the versions of the new subscription
    assert page.evaluate("() => livemosaicViewer.socket.connections") == 2
    assert page.evaluate("() => document.body.dataset.status") == "live"


def test_coastlines_are_drawn_in_the_service_projection(page: Page, server: WsServer) -> None:
    """The offline basemap: Natural Earth coastlines around the mosaic (UTM zone 18N, by the
    Bahamas), projected by the server, drawn by the page."""
    open_viewer(page, server, "Live/watch")
    page.wait_for_function(
        "() => Number(document.body.dataset.basemapLines || 0) > 0", timeout=TIMEOUT_MS
    )
    assert int(page.evaluate("() => document.body.dataset.basemapLines")) >= 5
    assert page.evaluate("() => document.body.dataset.basemapError") is None


@pytest.mark.parametrize(
    ("service", "legend"),
    [("Live/landcover", "Unique Values"), ("Live/ndvi", "Stretched"), ("Live/watch", "none")],
)
def test_legend_panel(page: Page, server: WsServer, service: str, legend: str) -> None:
    """Classes with their colours for a thematic service, a colour bar for one stretched band,
    nothing for an RGB composite."""
    open_viewer(page, server, service)
    page.wait_for_function("() => document.body.dataset.legend !== undefined", timeout=TIMEOUT_MS)
    assert page.evaluate("() => document.body.dataset.legend") == legend
    panel = page.locator("#lm-legend-panel")
    if legend == "Unique Values":
        rows = page.locator(".lm-legend-row")
        assert rows.count() >= 3 and panel.is_visible()
        assert page.locator(".lm-legend-row img").first.evaluate("i => i.naturalWidth") == 20
    elif legend == "Stretched":
        assert panel.is_visible() and "High" in page.locator("#lm-legend").inner_text()
    else:
        assert not panel.is_visible()
