"""exportImage across spatial references: items in four CRSs drawn in EPSG:3857 and 4326."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, reproject
from rasterio.warp import transform as warp_transform

from tests.rest.helpers import NEAREST, LiveServer, export, ok_json, read_tiff


def warp_expected(
    path: Path, crs: str, ext: dict[str, float], width: int, height: int
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    transform = from_bounds(ext["xmin"], ext["ymin"], ext["xmax"], ext["ymax"], width, height)
    with rasterio.open(path) as src:
        out = np.zeros((src.count, height, width), dtype=src.dtypes[0])
        reproject(src.read(), out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.nearest, src_nodata=src.nodata)  # fmt: skip
        mask = np.zeros((height, width), dtype="uint8")
        reproject(src.dataset_mask(), mask, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)  # fmt: skip
    return out, mask > 0


def source_match(
    path: Path,
    crs: str,
    ext: dict[str, float],
    data: npt.NDArray[Any],
    where: npt.NDArray[np.bool_],
) -> float:
    """Share of output pixels whose values are those of the source cell under their centre.

    GDAL's warper uses an approximate transformer (error threshold 0.125 pixel), so near a
    cell boundary the nearest neighbour may be the adjacent source cell: values of the 3 x 3
    source cells around the exact position are accepted, anything else is a wrong pixel.
    """
    bands, height, width = data.shape
    dst = from_bounds(ext["xmin"], ext["ymin"], ext["xmax"], ext["ymax"], width, height)
    rows, cols = np.nonzero(where)
    xs = dst.c + (cols + 0.5) * dst.a
    ys = dst.f + (rows + 0.5) * dst.e
    with rasterio.open(path) as src:
        sx, sy = warp_transform(crs, src.crs, xs.tolist(), ys.tolist())
        inv = ~src.transform
        fc = inv.a * np.asarray(sx) + inv.b * np.asarray(sy) + inv.c
        fr = inv.d * np.asarray(sx) + inv.e * np.asarray(sy) + inv.f
        source = src.read()
    got = data[:, rows, cols]
    ok = np.zeros(rows.shape, bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r = np.clip(np.floor(fr).astype(int) + dr, 0, source.shape[1] - 1)
            c = np.clip(np.floor(fc).astype(int) + dc, 0, source.shape[2] - 1)
            ok |= (source[:bands, r, c] == got).all(axis=0)
    return float(ok.mean())


MULTICRS_FILES = [
    "imagery/RGB.byte.tif",
    "imagery/TCI.tif",
    "imagery/cogeo.tif",
    "crs/world.rgb.tif",
]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rasterio.warp uses Affine *
@pytest.mark.parametrize("out_wkid", [3857, 4326])
@pytest.mark.parametrize("relpath", MULTICRS_FILES)
def test_four_crs_items_render_in_place(
    client: httpx.Client, live: LiveServer, relpath: str, out_wkid: int
) -> None:
    path = live.data / relpath
    item = live.item_by_path("multicrs", path)
    ext = item.extent  # EPSG:3857, the dataset CRS
    with rasterio.open(path) as ds:
        native = max(ds.width, ds.height)
    longest = min(native, 1100)
    scale = longest / max(ext.width, ext.height)
    size = f"{max(1, round(ext.width * scale))},{max(1, round(ext.height * scale))}"
    rule = {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [item.id]}
    meta = ok_json(export(client, live, "Live/multicrs", f="json", bbox=f"{ext.xmin},{ext.ymin},{ext.xmax},{ext.ymax}",
                          bboxSR=3857, imageSR=out_wkid, size=size, format="tiff", interpolation=NEAREST,
                          mosaicRule=rule))  # fmt: skip
    assert meta["extent"]["spatialReference"]["latestWkid"] == out_wkid
    href = meta["href"]
    assert href.startswith(live.base + "/arcgis/rest/directories/arcgisoutput/") and "?" not in href
    got = client.get(href)
    assert got.status_code == 200
    data, valid, profile = read_tiff(got.content)
    assert profile["crs"].to_epsg() == out_wkid
    assert (profile["width"], profile["height"]) == (meta["width"], meta["height"])
    expected, exp_valid = warp_expected(
        path, f"EPSG:{out_wkid}", meta["extent"], meta["width"], meta["height"]
    )
    both = valid & exp_valid
    union = valid | exp_valid
    assert both.sum() > 0.9 * union.sum()
    exact = float((data[:3, both] == expected[:3, both]).all(axis=0).mean())
    assert exact > 0.9, exact
    assert source_match(path, f"EPSG:{out_wkid}", meta["extent"], data[:3], valid) > 0.999


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_finest_item_on_top_in_web_mercator(client: httpx.Client, live: LiveServer) -> None:
    cogeo = live.item_by_path("multicrs", live.data / "imagery/cogeo.tif")
    e = cogeo.extent
    pad = e.width * 0.25
    bbox = {"xmin": e.xmin - pad, "ymin": e.ymin - pad, "xmax": e.xmax + pad, "ymax": e.ymax + pad,
            "spatialReference": {"wkid": 102100}}  # fmt: skip
    with rasterio.open(live.data / "imagery/cogeo.tif") as ds:
        size = round((bbox["xmax"] - bbox["xmin"]) / ds.res[0])  # native resolution: no overview
    rule = {
        "mosaicMethod": "esriMosaicAttribute",
        "sortField": "LowPS",
        "sortValue": 0,
        "ascending": True,
    }
    r = export(client, live, "Live/multicrs", bbox=bbox, size=f"{size},{size}", format="tiff",
               interpolation=NEAREST, mosaicRule=rule)  # fmt: skip
    data, valid, _profile = read_tiff(r.content)
    ext = {k: bbox[k] for k in ("xmin", "ymin", "xmax", "ymax")}
    top, top_valid = warp_expected(live.data / "imagery/cogeo.tif", "EPSG:3857", ext, size, size)
    under, under_valid = warp_expected(
        live.data / "crs/world.rgb.tif", "EPSG:3857", ext, size, size
    )
    assert valid.all() and (top_valid | under_valid).all()
    assert 0.3 < top_valid.mean() < 0.5  # cogeo in the middle, world.rgb around it
    assert source_match(live.data / "imagery/cogeo.tif", "EPSG:3857", ext, data, top_valid) > 0.999
    assert source_match(live.data / "crs/world.rgb.tif", "EPSG:3857", ext, data, ~top_valid) > 0.999
    assert (data[:, top_valid] == top[:, top_valid]).all(axis=0).mean() > 0.9
