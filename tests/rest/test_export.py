"""exportImage (spec 6.1): pixels against rasterio, mosaic rules and operators, time, f=json."""

from __future__ import annotations

import io
import json
import math
import os
import time
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from PIL import Image

from livemosaic.app import purge_outputs
from livemosaic.core.models import RasterItem
from tests.rest.conftest import QUARTERS
from tests.rest.helpers import NEAREST, LiveServer, bbox_of, error_of, export, ok_json, read_tiff

# --- a single raster at native resolution ----------------------------------------------------


def test_native_nearest_export_equals_rasterio_read(client: httpx.Client, live: LiveServer) -> None:
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        source = ds.read(1)
        bounds, width, height, nodata = ds.bounds, ds.width, ds.height, ds.nodata
    r = export(client, live, "dem", bbox=bbox_of(bounds), size=f"{width},{height}", format="tiff",
               pixelType="F32", interpolation=NEAREST)  # fmt: skip
    assert r.headers["content-type"] == "image/tiff"
    data, valid, profile = read_tiff(r.content)
    assert data.shape == (1, height, width)
    assert profile["crs"].to_epsg() == 2056
    src_valid = source != nodata
    assert np.array_equal(valid, src_valid)
    assert np.array_equal(data[0][src_valid], source[src_valid])


def test_native_export_of_one_tile_equals_rasterio_read(
    client: httpx.Client, live: LiveServer
) -> None:
    path = live.data / "mosaic/rgb1.tif"
    item = live.item_by_path("imagery", path)
    with rasterio.open(path) as ds:
        source = ds.read()
        bounds, width, height = ds.bounds, ds.width, ds.height
    rule = {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [item.id]}
    r = export(client, live, "imagery", bbox=bbox_of(bounds), size=f"{width},{height}", format="tiff",
               interpolation=NEAREST, mosaicRule=rule)  # fmt: skip
    data, valid, _ = read_tiff(r.content)
    src_valid = (source != 0).all(axis=0)
    assert valid[src_valid].all()
    assert np.array_equal(data[:, src_valid], source[:, src_valid])


# --- overlapping items: mosaic methods and operators -------------------------------------------


class Overlap:
    """RGB.byte.tif (full) and its quarters with halved values, as the test expects them."""

    def __init__(self, live: LiveServer) -> None:
        path = live.data / "imagery/RGB.byte.tif"
        with rasterio.open(path) as ds:
            self.orig = ds.read().astype("float64")
            self.bounds = ds.bounds
        self.full = live.item_by_path("overlap", path)
        self.quarter_items = {k: live.item_by_path("overlap", p) for k, p in live.quarters.items()}
        self.halved = np.where(self.orig == 0, 0, np.maximum(self.orig // 2, 1))
        self.valid = (self.orig != 0).all(axis=0)
        self.area: dict[str, npt.NDArray[np.bool_]] = {}
        for k, (r0, r1, c0, c1) in QUARTERS.items():
            m = np.zeros(self.valid.shape, bool)
            m[r0:r1, c0:c1] = True
            self.area[k] = m

    def compose(self, quarter_wins: dict[str, bool]) -> npt.NDArray[np.float64]:
        out = self.orig.copy()
        for k, wins in quarter_wins.items():
            if wins:
                out[:, self.area[k]] = self.halved[:, self.area[k]]
        return out

    def by_distance(self, point: tuple[float, float]) -> dict[str, bool]:
        def dist(item: RasterItem) -> float:
            cx, cy = item.extent.center
            return math.hypot(cx - point[0], cy - point[1])

        out = {}
        for k, q in self.quarter_items.items():
            dq, df = dist(q), dist(self.full)
            out[k] = dq < df or (dq == df and (q.id or 0) < (self.full.id or 0))
        return out

    def fetch(
        self, client: httpx.Client, live: LiveServer, rule: dict[str, Any], pixel_type: str = "U8"
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
        h, w = self.valid.shape
        r = export(client, live, "overlap", bbox=bbox_of(self.bounds), size=f"{w},{h}", format="tiff",
                   interpolation=NEAREST, mosaicRule=rule, pixelType=pixel_type)  # fmt: skip
        data, valid, _ = read_tiff(r.content)
        assert data.shape == self.orig.shape
        return data.astype("float64"), valid


@pytest.fixture(scope="module")
def overlap(live: LiveServer) -> Overlap:
    return Overlap(live)


def test_overlap_ids_follow_ingest_order(overlap: Overlap) -> None:
    ids = [q.id or 0 for q in overlap.quarter_items.values()]
    assert (overlap.full.id or 0) < min(ids)


@pytest.mark.parametrize(
    ("rule", "quarter_wins"),
    [
        ({"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_FIRST"}, False),
        ({"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_LAST"}, True),
        ({"mosaicMethod": "esriMosaicNone", "ascending": False}, True),
        ({"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_MIN"}, True),
        ({"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_MAX"}, False),
        ({"mosaicMethod": "esriMosaicCenter"}, False),
        ({"mosaicMethod": "esriMosaicAttribute", "sortField": "OBJECTID", "sortValue": 0}, False),
        (
            {"mosaicMethod": "esriMosaicAttribute", "sortField": "objectid", "sortValue": 10**9},
            True,
        ),
        ({"mosaicMethod": "esriMosaicNone", "where": "Name LIKE 'q%'"}, True),
    ],
)
def test_overlap_priority(
    client: httpx.Client,
    live: LiveServer,
    overlap: Overlap,
    rule: dict[str, Any],
    quarter_wins: bool,
) -> None:
    data, valid = overlap.fetch(client, live, rule)
    expected = overlap.compose(dict.fromkeys(QUARTERS, quarter_wins))
    assert valid[overlap.valid].all()
    assert np.array_equal(data[:, overlap.valid], expected[:, overlap.valid])


def test_overlap_northwest_and_viewpoint(
    client: httpx.Client, live: LiveServer, overlap: Overlap
) -> None:
    b = overlap.bounds
    data, _ = overlap.fetch(client, live, {"mosaicMethod": "esriMosaicNorthwest"})
    wins = overlap.by_distance((b.left, b.top))
    assert wins["q_nw"]  # the NW quarter's centre is nearest to the NW corner
    expected = overlap.compose(wins)
    assert np.array_equal(data[:, overlap.valid], expected[:, overlap.valid])
    se = overlap.quarter_items["q_se"].extent.center
    rule = {"mosaicMethod": "esriMosaicViewpoint", "viewpoint": {"x": se[0], "y": se[1]}}
    data, _ = overlap.fetch(client, live, rule)
    wins = overlap.by_distance(se)
    assert wins["q_se"]
    assert np.array_equal(data[:, overlap.valid], overlap.compose(wins)[:, overlap.valid])


def test_overlap_mean_and_sum_as_float(
    client: httpx.Client, live: LiveServer, overlap: Overlap
) -> None:
    v = overlap.valid
    data, _ = overlap.fetch(
        client, live, {"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_MEAN"}, "F32"
    )
    assert np.allclose(data[:, v], ((overlap.orig + overlap.halved) / 2)[:, v])
    data, _ = overlap.fetch(
        client, live, {"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_SUM"}, "F32"
    )
    assert np.allclose(data[:, v], (overlap.orig + overlap.halved)[:, v])


def test_overlap_lock_raster_and_fids(
    client: httpx.Client, live: LiveServer, overlap: Overlap
) -> None:
    ne = overlap.quarter_items["q_ne"]
    data, valid = overlap.fetch(
        client, live, {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [ne.id]}
    )
    inside = overlap.area["q_ne"] & overlap.valid
    assert valid[inside].all() and not valid[~overlap.area["q_ne"]].any()
    assert np.array_equal(data[:, inside], overlap.halved[:, inside])
    fids = [q.id for q in overlap.quarter_items.values()]
    data, _ = overlap.fetch(client, live, {"mosaicMethod": "esriMosaicNone", "fids": fids})
    assert np.array_equal(data[:, overlap.valid], overlap.halved[:, overlap.valid])


def test_band_ids_reorder(client: httpx.Client, live: LiveServer, overlap: Overlap) -> None:
    h, w = overlap.valid.shape
    base = {"bbox": bbox_of(overlap.bounds), "size": f"{w},{h}", "format": "tiff", "interpolation": NEAREST,
            "mosaicRule": {"mosaicMethod": "esriMosaicNone"}}  # fmt: skip
    data, _, _ = read_tiff(export(client, live, "overlap", **base).content)
    swapped, _, _ = read_tiff(export(client, live, "overlap", bandIds="2,1,0", **base).content)
    assert np.array_equal(swapped, data[::-1])
    one, _, _ = read_tiff(export(client, live, "overlap", bandIds="1", **base).content)
    assert one.shape[0] == 1 and np.array_equal(one[0], data[1])


# --- time series ---------------------------------------------------------------------------------


def test_time_selects_the_file_of_that_date(client: httpx.Client, live: LiveServer) -> None:
    path = live.data / "timeseries/modis_ndvi/TERRA_MODIS_012010_NDVI_2013-12-19.jp2"
    item = live.item_by_path("ndvi", path)
    assert item.time is not None
    with rasterio.open(path) as ds:
        source = ds.read(1)
        bounds, width, height = ds.bounds, ds.width, ds.height
    r = export(client, live, "Live/ndvi", bbox=bbox_of(bounds), size=f"{width},{height}", format="tiff",
               pixelType="S16", interpolation=NEAREST, time=f"{item.time - 3_600_000},{item.time + 3_600_000}",
               mosaicRule={"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_LAST"})  # fmt: skip
    data, valid, _ = read_tiff(r.content)
    assert valid.all()
    assert np.array_equal(data[0], source)


# --- f=json ------------------------------------------------------------------------------------------


def test_json_href_downloadable_and_scale(client: httpx.Client, live: LiveServer) -> None:
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        b = ds.bounds
    meta = ok_json(
        export(client, live, "dem", f="json", bbox=bbox_of(b), size="200,200", format="png")
    )
    assert set(meta) == {"href", "width", "height", "extent", "scale"}
    assert (meta["width"], meta["height"]) == (200, 200)
    assert meta["extent"]["spatialReference"]["wkid"] == 2056
    assert (
        abs(meta["extent"]["xmin"] - b.left) < 1e-6 and abs(meta["extent"]["ymax"] - b.top) < 1e-6
    )
    ground = (b.right - b.left) / 200
    assert abs(meta["scale"] - ground / 0.0002645833) < 1e-3
    got = client.get(meta["href"])
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
    assert got.headers["content-type"] == "image/png"


def test_adjust_aspect_ratio(client: httpx.Client, live: LiveServer) -> None:
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        b = ds.bounds
    bbox = f"{b.left},{b.bottom},{b.right},{b.bottom + (b.top - b.bottom) / 2}"
    meta = ok_json(export(client, live, "dem", f="json", bbox=bbox, size="100,100", format="png"))
    e = meta["extent"]
    assert abs((e["xmax"] - e["xmin"]) - (e["ymax"] - e["ymin"])) < 1e-6
    assert abs((e["ymin"] + e["ymax"]) / 2 - (b.bottom + (b.top - b.bottom) / 4)) < 1e-6
    meta = ok_json(
        export(
            client,
            live,
            "dem",
            f="json",
            bbox=bbox,
            size="100,100",
            format="png",
            adjustAspectRatio="false",
        )
    )
    assert abs(meta["extent"]["ymax"] - (b.bottom + (b.top - b.bottom) / 2)) < 1e-6


def test_openlayers_upper_case_and_envelope_bbox(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("dem"), params={"f": "json"}))
    e = info["extent"]
    upper = client.get(live.svc("dem") + "/EXPORTIMAGE", params={
        "F": "image", "FORMAT": "png32", "BBOX": f"{e['xmin']},{e['ymin']},{e['xmax']},{e['ymax']}",
        "SIZE": "64.0001,64", "BBOXSR": "2056", "IMAGESR": "2056", "DPI": "96", "TRANSPARENT": "true"})  # fmt: skip
    assert upper.content.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(upper.content)).size == (64, 64)
    envelope = json.dumps(info["initialExtent"])
    py_style = client.post(
        live.svc("dem") + "/exportImage", data={"f": "json", "bbox": envelope, "size": "50,50"}
    )
    assert ok_json(py_style)["extent"]["spatialReference"]["wkid"] == 2056


def test_rendering_rule_hillshade(client: httpx.Client, live: LiveServer) -> None:
    rule = {
        "rasterFunction": "Hillshade",
        "rasterFunctionArguments": {"Azimuth": 315, "Altitude": 45, "ZFactor": 1},
    }
    r = export(client, live, "dem", size="64,64", format="png", renderingRule=rule)
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (64, 64)
    assert len(np.unique(np.asarray(image.convert("L")))) > 10


def test_empty_area_tiff_is_all_nodata(client: httpx.Client, live: LiveServer) -> None:
    r = export(client, live, "dem", bbox="0,0,100,100", size="8,8", format="tiff")
    _data, valid, _ = read_tiff(r.content)
    assert not valid.any()


def test_kmz_not_supported(client: httpx.Client, live: LiveServer) -> None:
    err = error_of(client.get(live.svc("dem") + "/exportImage", params={"f": "kmz"}))
    assert err["code"] == 400 and "Format not supported" in " ".join(err["details"])


def test_outputs_expire(client: httpx.Client, live: LiveServer) -> None:
    meta = ok_json(export(client, live, "dem", f="json", size="16,16", format="png"))
    relative = meta["href"].split("/arcgisoutput/", 1)[1]
    path = live.settings.output_dir / relative
    assert path.is_file()
    ttl = live.settings.output_ttl_seconds
    purge_outputs(live.settings.output_dir, ttl)
    assert path.is_file()  # fresh outputs stay
    old = time.time() - ttl - 5
    os.utime(path, (old, old))
    assert purge_outputs(live.settings.output_dir, ttl) >= 1
    assert not path.exists()
    assert error_of(client.get(meta["href"], params={"f": "json"}))["code"] == 404
