"""Slope and Aspect raster functions against gdaldem on the sample DEM; lercVersion=1."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import rasterio

from tests.rest.helpers import NEAREST, LiveServer, bbox_of, error_of, export, read_tiff

GDALDEM = shutil.which("gdaldem")
needs_gdaldem = pytest.mark.skipif(
    GDALDEM is None, reason="gdaldem is not installed (scripts/install-gdal-tools installs it)"
)


def _gdaldem(mode: str, dem: Path, out: Path, *extra: str) -> npt.NDArray[np.float64]:
    assert GDALDEM is not None
    subprocess.run([GDALDEM, mode, str(dem), str(out), "-q", *extra], check=True)
    with rasterio.open(out) as ds:
        data = ds.read(1).astype(np.float64)
        nodata = ds.nodata
    return np.where(data == nodata, np.nan, data)


def _served(client: httpx.Client, live: LiveServer, rule: dict[str, Any]) -> Any:
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        bounds, width, height = ds.bounds, ds.width, ds.height
    r = export(client, live, "dem", bbox=bbox_of(bounds), size=f"{width},{height}", format="tiff",
               interpolation=NEAREST, renderingRule=rule)  # fmt: skip
    data, valid, profile = read_tiff(r.content)
    assert profile["dtype"] == "float32"
    return np.where(valid, data[0].astype(np.float64), np.nan)


def _compare(ours: Any, theirs: Any, atol: float) -> None:
    both = np.isfinite(ours) & np.isfinite(theirs)
    # gdaldem leaves the outer ring of pixels empty; livemosaic reads one pixel more around
    assert both.sum() > 0.9 * ours.size
    assert np.allclose(ours[both], theirs[both], atol=atol), np.abs(ours - theirs)[both].max()
    # every pixel gdaldem computes, livemosaic computes too
    assert np.isfinite(ours[np.isfinite(theirs)]).all()


@needs_gdaldem
@pytest.mark.parametrize(
    ("args", "gdal_args"),
    [
        ({}, []),
        ({"ZFactor": 2.5}, ["-s", "0.4"]),
        ({"SlopeType": 2}, ["-p"]),
        ({"SlopeType": "PERCENTRISE", "ZFactor": 3}, ["-p", "-s", str(1 / 3)]),
    ],
)
def test_slope_matches_gdaldem(
    client: httpx.Client,
    live: LiveServer,
    tmp_path: Path,
    args: dict[str, Any],
    gdal_args: list[str],
) -> None:
    rule = {"rasterFunction": "Slope", "rasterFunctionArguments": args, "variableName": "DEM"}
    ours = _served(client, live, rule)
    theirs = _gdaldem("slope", live.data / "dem/dem.tif", tmp_path / "slope.tif", *gdal_args)
    # gdaldem computes in float32 (heights near 2000 m): agreement to its rounding
    _compare(ours, theirs, atol=1e-2 if "-p" not in gdal_args else 2e-2)


@needs_gdaldem
def test_aspect_matches_gdaldem_clockwise_from_north_minus_one_flat(
    client: httpx.Client, live: LiveServer, tmp_path: Path
) -> None:
    ours = _served(client, live, {"rasterFunction": "Aspect"})
    theirs = _gdaldem("aspect", live.data / "dem/dem.tif", tmp_path / "aspect.tif")
    flat = ours == -1
    # gdaldem writes nodata for flat pixels where ArcGIS (and livemosaic) write -1
    assert np.isnan(theirs[flat]).all()
    # gdaldem works in float32: on nearly flat ground its rounding turns the direction, so
    # compare where the slope is at least 1 degree (most of this DEM)
    steep = _gdaldem("slope", live.data / "dem/dem.tif", tmp_path / "slope.tif") >= 1.0
    both = np.isfinite(ours) & np.isfinite(theirs) & ~flat & steep
    diff = np.abs(ours[both] - theirs[both])
    diff = np.minimum(diff, 360 - diff)  # 359.99 and 0.01 are neighbours
    assert both.sum() > 0.8 * ours.size
    assert np.median(diff) < 0.005  # measured: 0.0015 (median), 0.019 (99 %), 0.14 (max)
    assert np.percentile(diff, 99) < 0.03 and diff.max() < 0.5


def test_aspect_of_planes_faces_the_downhill_direction() -> None:
    from livemosaic.core.ports import PixelBlock
    from livemosaic.core.rendering import RenderingRule, apply_rendering

    rows, cols = np.mgrid[0:5, 0:5].astype(np.float64)
    cases = {
        "east": (-cols, 90.0),  # heights fall towards the east
        "north": (rows * 1.0, 0.0),  # row 0 is north: lowest there
        "south": (-rows, 180.0),
        "west": (cols * 1.0, 270.0),
        "flat": (np.zeros((5, 5)), -1.0),
    }
    valid = np.ones((5, 5), dtype=bool)
    for name, (z, expected) in cases.items():
        out = apply_rendering(PixelBlock(z[None], valid), RenderingRule("Aspect"))
        assert out.data.dtype == np.float32
        assert out.data[0, 2, 2] == pytest.approx(expected), name
    slope = apply_rendering(
        PixelBlock((-cols)[None], valid), RenderingRule("Slope", {"SlopeType": 1})
    )
    assert slope.data[0, 2, 2] == pytest.approx(45.0)
    # SCALED: the z-factor grows with the cell size (ArcGIS: + PSZFactor * size ** PSPower)
    scaled = apply_rendering(
        PixelBlock((-cols * 10)[None], valid),
        RenderingRule("Slope", {"SlopeType": "SCALED", "ZFactor": 1}),
        cell_size=(10.0, 10.0),
    )
    zfactor = 1 + 0.024 * 10**0.664
    expected = np.degrees(np.arctan(zfactor))
    assert scaled.data[0, 2, 2] == pytest.approx(expected, rel=1e-5)


def test_unknown_slope_type_is_a_400(client: httpx.Client, live: LiveServer) -> None:
    rule = '{"rasterFunction": "Slope", "rasterFunctionArguments": {"SlopeType": 7}}'
    r = client.get(live.svc("dem") + "/exportImage", params={"renderingRule": rule, "f": "json"})
    err = error_of(r)
    assert err["code"] == 400 and "SlopeType" in str(err)


def test_lerc_version_1_is_written_when_asked(client: httpx.Client, live: LiveServer) -> None:
    """lercVersion=1 gives LERC 1 (CntZImage) blobs that the LERC library decodes to the same
    values and validity as the LERC 2 answer of the same request."""
    import lerc

    params = {"format": "lerc", "size": "20,20", "f": "image", "lercVersion": "1"}
    v1 = client.get(live.svc("dem") + "/exportImage", params=params)
    assert v1.status_code == 200 and v1.content.startswith(b"CntZImage "), v1.content[:80]
    v2 = client.get(live.svc("dem") + "/exportImage", params={**params, "lercVersion": "2"})
    assert v2.status_code == 200 and v2.content.startswith(b"Lerc2 ")
    code1, values1, mask1 = lerc.decode(v1.content)[:3]
    code2, values2, mask2 = lerc.decode(v2.content)[:3]
    assert code1 == code2 == 0
    valid = mask2.astype(bool) if mask2 is not None else None
    if valid is None:
        assert mask1 is None
        assert (values1 == values2.astype(values1.dtype)).all()
    else:
        assert (mask1.astype(bool) == valid).all()
        assert (values1[valid] == values2[valid].astype(values1.dtype)).all()
    rgb = client.get(live.svc("imagery") + "/exportImage", params=params)
    assert rgb.content.count(b"CntZImage ") == 3  # one blob per band
    assert lerc.getLercBlobInfo(rgb.content)[6] == 3
