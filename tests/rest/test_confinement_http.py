"""Hostile rasters against a real server (uvicorn on 127.0.0.1, real SQLite catalog).

Every hostile file of :mod:`tests.adapters.hostile` is refused at ingest by each way in — the
ingestor (``dataset add``), the watcher's pipeline and the HTTP ingest endpoint — with a
reason that names no outside path and no GDAL network error. Then each harmless item of the
published ``conf`` service is swapped after ingest for a hostile file (a VRT rewritten, a file
replaced by a symlink to the outside, an overview symlinked to the outside): anonymous
exportImage keeps answering images, without the outside raster's pixels. An inotify watch on
the outside folder sees no open, the 127.0.0.1 listener the network sources point at no
request. A legitimate VRT inside the folder draws exactly the pixels of its source.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio

from livemosaic.app import AppContext
from livemosaic.client import LiveMosaicClient, RemoteError
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.ports import ItemQuery
from livemosaic.core.watch_rules import WatchRule
from tests.adapters.hostile import (
    BASE,
    OUTSIDE_VALUE,
    SIZE,
    TRANSFORM,
    OpenWatch,
    World,
    listener,
    make_world,
    simple,
)
from tests.figures import record
from tests.liveserver import LiveServer, make_server
from tests.rest.helpers import read_tiff

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux only")
PASSWORD = "confine-password-1"
BBOX = f"{TRANSFORM.c},{TRANSFORM.f - SIZE * 30.0},{TRANSFORM.c + SIZE * 30.0},{TRANSFORM.f}"


@dataclass
class Site:
    server: LiveServer
    world: World
    watch: OpenWatch
    requests: Any
    draws: dict[str, Path]  # kind -> catalogued harmless file, swapped later
    added: dict[str, list[str]] = field(default_factory=dict)  # what populate saw


def draw_files(world: World) -> dict[str, Path]:
    """Harmless files at names that later receive each hostile content."""
    draws: dict[str, Path] = {}
    benign = simple(str(world.data / "base.tif"))
    for kind in world.contents:
        path = world.data / f"d_{kind}"
        path.write_text(benign)
        draws[kind] = path
    for kind in ("swap.tif", "ovr.tif"):
        path = world.data / f"d_{kind}"
        path.write_bytes((world.data / "base.tif").read_bytes())
        draws[kind] = path
    return draws


@pytest.fixture(scope="module")
def site(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("confine")
    with listener() as (port, requests):
        world = make_world(work / "w", port, shared_data)
        draws = draw_files(world)
        (world.data / "good.vrt").write_text(simple("base.tif", relative=True))
        rejected: dict[str, list[str]] = {}

        def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
            ing.create_dataset("conf", "EPSG:32618")
            report = ing.add_paths("conf", list(draws.values()))
            assert report.files_added == len(draws) and not report.rejected, report
            ing.create_dataset("good", "EPSG:32618")
            assert ing.add_paths("good", [data / "good.vrt"]).added == 1
            ing.create_dataset("hostile", "EPSG:32618")
            for name, path in world.hostile.items():
                if name != "link.tif":
                    rejected[name] = [r for _, r in ing.add_paths("hostile", [path]).rejected]
            ctx.publisher.publish(ServiceDefinition("conf", "conf"))
            ctx.publisher.publish(ServiceDefinition("good", "good"))

        watch = OpenWatch(world.outside)
        (world.outside / "real.tif").read_bytes()
        assert "real.tif" in watch.poll()  # the watch sees an open when there is one
        watch.events.clear()
        users = {"pub": ("publisher", PASSWORD)}
        try:
            with make_server(work, world.data, populate, users=users) as server:
                yield Site(server, world, watch, requests, draws, rejected)
        finally:
            watch.close()


def clean(site: Site, reason: str) -> bool:
    """True when a refusal names the kind of reference and nothing of its target."""
    rest = reason
    for path in site.world.hostile.values():
        rest = rest.replace(str(path), "<path>")
    return "refused" in rest and not any(s in rest for s in site.world.secrets())


def export(client: httpx.Client, site: Site, **params: Any) -> tuple[np.ndarray, np.ndarray]:
    """Anonymous exportImage of ``conf`` (or ``service``) as a GeoTIFF: (bands, valid)."""
    service = params.pop("service", "conf")
    query = {
        "bbox": BBOX,
        "bboxSR": 32618,
        "imageSR": 32618,
        "size": f"{SIZE},{SIZE}",
        "format": "tiff",
        "pixelType": "U8",
        "interpolation": "RSP_NearestNeighbor",
        "f": "image",
        **params,
    }
    url = f"{site.server.root}/rest/services/{service}/ImageServer/exportImage"
    r = client.get(url, params=query)
    assert r.status_code == 200, r.text[:300]
    assert "json" not in r.headers["content-type"], r.text[:300]
    data, valid, _ = read_tiff(r.content)
    return data, valid


def swap(site: Site, kind: str) -> None:
    """Turn a catalogued harmless file into its hostile kind (after ingest)."""
    path = site.draws[kind]
    outside = site.world.outside / "real.tif"
    if kind == "swap.tif":
        path.unlink()
        os.symlink(outside, path)
    elif kind == "ovr.tif":
        os.symlink(outside, str(path) + ".ovr")
    else:
        tmp = path.with_name(path.name + ".new")
        tmp.write_text(site.world.contents[kind])
        os.replace(tmp, path)


def test_hostile_rasters_are_refused_at_ingest_and_never_read_at_draw_time(site: Site) -> None:
    world = site.world
    named = [p for k, p in world.hostile.items() if k != "link.tif"]
    # 1. the ingestor (what `dataset add` runs)
    assert len(site.added) == len(named)
    for name, reasons in site.added.items():
        assert len(reasons) == 1 and clean(site, reasons[0]), (name, reasons)
    # 2. the watcher's pipeline of the running server
    pipeline = site.server.ctx.pipeline
    assert pipeline is not None
    report = pipeline.process(WatchRule.adhoc("piped"), named, explicit=True)
    assert report.items_added == 0 and len(report.quarantined) == len(named), report
    assert all(clean(site, why) for _, why in report.quarantined), report.quarantined
    # 3. the HTTP ingest endpoint
    with LiveMosaicClient(site.server.root, "pub", PASSWORD) as client:
        answer = client.ingest(named, "viahttp")
        assert answer["itemsAdded"] == 0 and len(answer["quarantined"]) == len(named), answer
        assert all(clean(site, q["reason"]) for q in answer["quarantined"]), answer
        with pytest.raises(RemoteError) as caught:
            client.ingest([world.hostile["link.tif"]], "viahttp")
        assert caught.value.code == 403
        listed = client.quarantined("viahttp")
        assert len(listed) == len(named)
        assert all(clean(site, q["reason"]) for q in listed)
    # draw time: every catalogued harmless file swapped for a hostile one
    items = site.server.ctx.catalog.find_items("conf", ItemQuery())
    ids = {Path(it.path).name: it.id for it in items}
    assert len(ids) == len(site.draws)
    with httpx.Client(timeout=120) as http:
        # (not drawn before the swap: a handle opened then would stay on the old file)
        for kind in site.draws:
            swap(site, kind)
        for kind, path in site.draws.items():
            rule = {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [ids[path.name]]}
            for size in (SIZE, 16):  # full resolution, and a scale served from overviews
                data, valid = export(http, site, mosaicRule=json.dumps(rule), size=f"{size},{size}")
                assert OUTSIDE_VALUE not in data, kind
                assert not valid.any(), f"{kind}: the swapped item was drawn"
        data, valid = export(http, site)  # the whole mosaic: every item skipped
        assert OUTSIDE_VALUE not in data and not valid.any()
    reads_outside = len(site.watch.poll())
    requests = int(site.requests())
    record(
        "hostile_rasters",
        files=len(world.hostile),
        swapped_after_ingest=len(site.draws),
        ingest_paths=3,
        reads_outside=reads_outside,
        requests_to_listener=requests,
    )
    assert reads_outside == 0, site.watch.poll()
    assert requests == 0


def test_a_legitimate_vrt_draws_the_pixels_of_its_source(site: Site) -> None:
    with httpx.Client(timeout=120) as http:
        data, valid = export(http, site, service="good")
    assert valid.all()
    with rasterio.open(site.world.data / "good.vrt") as ds:
        np.testing.assert_array_equal(data[0], ds.read(1))
    np.testing.assert_array_equal(data[0], BASE)
