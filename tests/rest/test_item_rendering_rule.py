"""mosaicRule.itemRenderingRule: a raster function run on each item before mosaicking."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import rasterio

from tests.rest.helpers import NEAREST, LiveServer, bbox_of, error_of, export, read_tiff


def _fetch(client: httpx.Client, live: LiveServer, rule: dict[str, Any]) -> Any:
    path = live.data / "imagery/RGB.byte.tif"
    with rasterio.open(path) as ds:
        bounds, width, height = ds.bounds, ds.width, ds.height
    r = export(client, live, "overlap", bbox=bbox_of(bounds), size=f"{width},{height}",
               format="tiff", interpolation=NEAREST, mosaicRule=rule)  # fmt: skip
    return read_tiff(r.content)


def test_item_rule_extracts_a_band_of_every_item(client: httpx.Client, live: LiveServer) -> None:
    path = live.data / "imagery/RGB.byte.tif"
    with rasterio.open(path) as ds:
        source = ds.read()
    full = live.item_by_path("overlap", path)
    rule = {
        "mosaicMethod": "esriMosaicLockRaster",
        "lockRasterIds": [full.id],
        "itemRenderingRule": {
            "rasterFunction": "ExtractBand",
            "rasterFunctionArguments": {"BandIds": [2]},
        },
    }
    data, valid, profile = _fetch(client, live, rule)
    assert profile["count"] == 1  # ignored before: three bands came back
    inside = (source != 0).all(axis=0)
    assert np.array_equal(data[0][inside], source[2][inside])


def test_item_rule_stretches_each_item_with_its_own_statistics(
    client: httpx.Client, live: LiveServer
) -> None:
    """A min-max Stretch per item uses the item's statistics: each quarter is stretched to its
    own range before the quarters are mosaicked (a rule on the mosaic would use one range)."""
    quarter = live.item_by_path("overlap", live.quarters["q_nw"])
    with rasterio.open(live.quarters["q_nw"]) as ds:
        raw = ds.read(1).astype(np.float64)
    st = quarter.stats[0]
    rule = {
        "mosaicMethod": "esriMosaicLockRaster",
        "lockRasterIds": [quarter.id],
        "itemRenderingRule": {
            "rasterFunction": "Stretch",
            "rasterFunctionArguments": {"StretchType": 5},
        },
    }
    data, valid, _ = _fetch(client, live, rule)
    assert data.dtype == np.uint8
    window = data[0][: raw.shape[0], : raw.shape[1]]
    ok = valid[: raw.shape[0], : raw.shape[1]] & (raw != 0)
    expected = np.clip(np.rint((raw - st.min) / (st.max - st.min) * 255), 0, 255)
    assert np.abs(window[ok].astype(np.float64) - expected[ok]).max() <= 1
    assert window[ok].max() == 255  # the item's own maximum reaches the top


def test_bad_item_rule_is_a_400_naming_the_mosaic_rule(
    client: httpx.Client, live: LiveServer
) -> None:
    rule = '{"itemRenderingRule": {"rasterFunction": "Curvature"}}'
    r = client.get(live.svc("overlap") + "/exportImage", params={"mosaicRule": rule, "f": "json"})
    err = error_of(r)
    assert err["code"] == 400 and "mosaicRule" in str(err) and "Curvature" in str(err)
