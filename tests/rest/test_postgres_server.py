"""Two real servers (nodes) over one PostgreSQL catalog: a refresh through one is served by
both, and exportImage draws the new item."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from livemosaic.adapters.catalog.postgres import PostgresCatalog
from livemosaic.app import AppContext
from livemosaic.client import LiveMosaicClient
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from tests.liveserver import LiveServer, add_dataset, make_server
from tests.postgres import pg_database, pg_url

__all__ = ["pg_database", "pg_url"]

PASSWORD = "correct horse battery"
USERS = {"pub": ("publisher", PASSWORD)}


def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    """``Live/tiles`` (hasLiveData) with one tile."""
    assert isinstance(ctx.catalog, PostgresCatalog)
    add_dataset(ing, "tiles", [data / "mosaic/rgb1.tif"])
    ctx.publisher.publish(
        ServiceDefinition(
            name="tiles", dataset="tiles", folder="Live", properties={"hasLiveData": "true"}
        )
    )


def nothing(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    """A second node: the catalog is there already."""


def extent_of(live: LiveServer) -> list[float]:
    info = httpx.get(live.service_url("Live/tiles"), params={"f": "json"}, timeout=30).json()
    return [float(info["extent"][k]) for k in ("xmin", "ymin", "xmax", "ymax")]


def export_png(live: LiveServer, bbox: list[float]) -> np.ndarray:
    answer = httpx.get(
        f"{live.service_url('Live/tiles')}/exportImage",
        params={
            "bbox": ",".join(map(str, bbox)),
            "size": "64,64",
            "format": "png",
            "f": "image",
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["content-type"].startswith("image/png")
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def test_a_refresh_through_one_node_is_served_by_both(
    shared_data: Path, tmp_path: Path, pg_url: str
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    with (
        make_server(
            one, shared_data, populate, users=USERS, catalog_url=pg_url, snapshot_poll_seconds=0.2
        ) as node1,
        make_server(
            two, shared_data, nothing, catalog_url=pg_url, snapshot_poll_seconds=0.2
        ) as node2,
    ):
        before = extent_of(node1)
        assert extent_of(node2) == before
        ing = Ingestor(node1.ctx.catalog, node1.ctx.source, list(node1.settings.data_folders))
        assert ing.add_paths("tiles", [shared_data / "mosaic/rgb2.tif"]).added == 1
        with LiveMosaicClient(node1.root, "pub", PASSWORD) as client:
            results = client.refresh_service("tiles", folder="Live")
        assert results["success"] is True and "extent" in results["changed"]
        after = extent_of(node1)
        assert after[2] > before[2]  # rgb2 lies east of rgb1
        deadline = time.monotonic() + 10
        while extent_of(node2) != after:
            assert time.monotonic() < deadline, "node 2 never served the refreshed extent"
            time.sleep(0.1)
        east = [before[2], after[1], after[2], after[3]]  # only the new tile lies here
        for node in (node1, node2):
            pixels = export_png(node, east)
            assert pixels.shape[:2] == (64, 64)
            assert pixels[..., :3].max() > 0, "the new tile was not drawn"
