"""RasterioSource.inspect on the real sample rasters, CF time decoding and file-name times."""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from livemosaic.adapters.raster import RasterioSource, stats
from livemosaic.adapters.raster.cf_time import CFTimeError, decode, parse_units
from livemosaic.adapters.raster.ncmeta import dim_roles, helper_names, is_helper
from livemosaic.adapters.raster.timeparse import (
    compile_pattern,
    time_from_name,
    time_from_tiff_tag,
)
from livemosaic.core.models import RasterItem
from livemosaic.core.ports import InspectOptions
from livemosaic.errors import InvalidParameter, RasterRejected
from tests.conftest import reader_folders

SOURCE = RasterioSource(reader_folders())
OPTS = InspectOptions(dataset_crs=None)
PIXEL_TYPES = {"uint8": "U8", "int16": "S16", "float32": "F32", "float64": "F64"}

SINGLE_IMAGE_FILES = [
    "imagery/RGB.byte.tif",
    "imagery/RGBA.byte.tif",
    "imagery/RGB2.byte.tif",
    "imagery/TCI.tif",
    "imagery/cogeo.tif",
    "dem/dem.tif",
    "dem/N10W110.hgt.zip",
    "crs/shade.tif",
    "crs/world.rgb.tif",
    "crs/goes.tif",
    "mosaic/rgb1.tif",
    "mosaic/rgb2.tif",
    "mosaic/rgb3.tif",
    "mosaic/rgb4.tif",
    "timeseries/modis_ndvi/TERRA_MODIS_012010_NDVI_2013-09-14.jp2",
    "timeseries/modis_ndvi/TERRA_MODIS_012010_NDVI_2014-02-18.jp2",
    "formats/test.grd",
    "size/byte.tif",
    "size/cog_world.tif",
]


def ms(text: str) -> int:
    """Epoch ms of an ISO UTC timestamp."""
    when = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


@pytest.fixture(scope="module")
def manifest(shared_data: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_data / "manifest.json").read_text())
    return data


def inspect(path: Path, options: InspectOptions = OPTS) -> list[RasterItem]:
    return SOURCE.inspect(str(path), options)


def signed_area(ring: tuple[tuple[float, float], ...]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring[:-1], ring[1:], strict=True))


@pytest.mark.parametrize("rel", SINGLE_IMAGE_FILES)
def test_single_image_matches_manifest(
    shared_data: Path, manifest: dict[str, Any], rel: str
) -> None:
    facts = manifest[rel]["rasterio"]
    items = inspect(shared_data / rel)
    assert len(items) == 1
    item = items[0]
    assert item.path == str(shared_data / rel)
    assert (item.width, item.height) == (facts["width"], facts["height"])
    assert item.pixel_type == PIXEL_TYPES[facts["dtypes"][0]]
    if facts["crs"]["epsg"] is not None:
        assert item.native_crs == f"EPSG:{facts['crs']['epsg']}"
    else:
        assert CRS.from_user_input(item.native_crs).to_proj4() == facts["crs"]["proj4"]
    left, bottom, right, top = facts["bounds"]
    ext = item.native_extent
    assert ext.xmin == pytest.approx(left) and ext.xmax == pytest.approx(right)
    assert ext.ymin == pytest.approx(min(bottom, top)) and ext.ymax == pytest.approx(
        max(bottom, top)
    )
    assert item.cell_size_x == pytest.approx(facts["res"][0])
    assert item.cell_size_y == pytest.approx(facts["res"][1])
    if facts["nodata"] is None:
        assert item.nodata is None
    else:
        assert item.nodata == pytest.approx(facts["nodata"])
    assert item.overview_count == len(facts["overviews"])
    alpha = "alpha" in facts["mask_flags"]
    assert item.bands == tuple(range(1, facts["count"] + (0 if alpha else 1)))
    assert len(item.band_names) == len(item.bands)
    assert len(item.stats) == len(item.bands)
    assert item.file_size == os.stat(shared_data / rel).st_size
    assert item.file_mtime_ns == os.stat(shared_data / rel).st_mtime_ns
    # footprint: closed clockwise ring whose bbox is the extent; native CRS kept
    ring = item.footprint
    assert ring[0] == ring[-1] and len(ring) == 81
    assert signed_area(ring) < 0
    assert item.extent.xmin == pytest.approx(min(p[0] for p in ring))
    assert item.extent == item.native_extent


@pytest.mark.parametrize(
    ("rel", "kind"),
    [
        ("imagery/RGB.byte.tif", "nodata"),
        ("imagery/RGBA.byte.tif", "alpha"),
        ("imagery/RGB2.byte.tif", "mask"),
        ("imagery/cogeo.tif", "mask"),
        ("crs/goes.tif", "mask"),
        ("crs/world.rgb.tif", "none"),
        ("dem/dem.tif", "nodata"),
        ("formats/test.grd", "nodata"),
        ("size/byte.tif", "none"),
    ],
)
def test_mask_kind(shared_data: Path, rel: str, kind: str) -> None:
    assert inspect(shared_data / rel)[0].mask_kind == kind


def test_band_names_and_packed_types(shared_data: Path) -> None:
    assert inspect(shared_data / "imagery/RGBA.byte.tif")[0].band_names == ("Red", "Green", "Blue")
    assert inspect(shared_data / "size/byte.tif")[0].band_names == ("Band_1",)
    assert inspect(shared_data / "formats/test.grd")[0].band_names == ("test",)


def test_exact_stats_of_small_files(shared_data: Path) -> None:
    item = inspect(shared_data / "imagery/RGB.byte.tif")[0]
    with rasterio.open(shared_data / "imagery/RGB.byte.tif") as ds:
        data = ds.read().astype(np.float64)
    for b, st in enumerate(item.stats):
        values = data[b][data[b] != 0]
        assert st.count == values.size
        assert (st.min, st.max) == (values.min(), values.max())
        assert st.mean == pytest.approx(values.mean())
        assert st.std == pytest.approx(values.std())
    grd = inspect(shared_data / "formats/test.grd")[0]
    assert grd.stats[0].count == 80 * 115 - 6022  # NaN cells are not valid


def test_stats_skipped_when_not_asked(shared_data: Path) -> None:
    opts = InspectOptions(None, validate_pixels=False, compute_stats=False)
    assert inspect(shared_data / "dem/dem.tif", opts)[0].stats == ()


def test_alpha_stats_exclude_transparent_pixels(shared_data: Path) -> None:
    item = inspect(shared_data / "imagery/RGBA.byte.tif")[0]
    with rasterio.open(shared_data / "imagery/RGBA.byte.tif") as ds:
        alpha = ds.read(4)
    assert item.stats[0].count == int((alpha > 0).sum())


@pytest.mark.parametrize(
    ("rel", "fragment"),
    [
        ("bad/empty.tif", "empty file"),
        ("bad/not_a_raster.tif", "not a raster"),
        ("bad/truncated_header.tif", "truncated or damaged"),
        ("bad/truncated.tif", "pixels cannot be read"),
        ("bad/corrupt.tif", "pixels cannot be read"),
        ("bad/no_georef.tif", "not georeferenced"),
        ("formats/MOD09GA.A2008296.h14v17.006.2015181011753.hdf", "cannot read HDF4"),
        ("formats/test.gri", "sidecar file"),
        ("imagery/RGB2.byte.tif.msk", "sidecar file"),
    ],
)
def test_bad_inputs_are_rejected(shared_data: Path, rel: str, fragment: str) -> None:
    with pytest.raises(RasterRejected) as info:
        inspect(shared_data / rel)
    assert fragment in info.value.reason
    assert info.value.next_step
    assert info.value.path == str(shared_data / rel)


def test_hdf4_rejection_explains_conversion(shared_data: Path) -> None:
    with pytest.raises(RasterRejected) as info:
        inspect(shared_data / "formats/MOD09GA.A2008296.h14v17.006.2015181011753.hdf")
    assert "gdal_translate" in str(info.value)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(RasterRejected, match="not found"):
        inspect(tmp_path / "nope.tif")


@pytest.mark.parametrize("suffix", [".aux.xml", ".ovr", ".msk", ".gri"])
def test_sidecar_names_are_rejected(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"image.tif{suffix}"
    path.write_bytes(b"x")
    with pytest.raises(RasterRejected, match="sidecar file"):
        inspect(path)


def test_large_file_validation_is_fast_and_uses_overviews(shared_data: Path) -> None:
    start = time.perf_counter()
    item = inspect(shared_data / "size/cog_world.tif")[0]
    assert time.perf_counter() - start < 5.0
    assert item.overview_count == 6
    assert item.low_ps == pytest.approx(0.01)
    assert item.high_ps == pytest.approx(0.64)
    assert item.stats[0].count > 0


def test_sampled_validation_still_rejects_damaged_files(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tiny full-read budget every file takes the overview + sampled-blocks path."""
    monkeypatch.setattr(stats, "FULL_READ_PIXELS", 16)
    for rel in ("bad/truncated.tif", "bad/corrupt.tif"):
        with pytest.raises(RasterRejected, match="pixels cannot be read"):
            inspect(shared_data / rel)
    assert inspect(shared_data / "imagery/TCI.tif")[0].stats[0].count > 0


def test_truncated_file_opens_without_validation(shared_data: Path) -> None:
    opts = InspectOptions(None, validate_pixels=False, compute_stats=False)
    item = inspect(shared_data / "bad/truncated.tif", opts)[0]
    assert item.native_crs == "EPSG:32634"


def test_dataset_crs_transforms_footprint(shared_data: Path) -> None:
    path = shared_data / "imagery/RGB.byte.tif"
    item = inspect(path, InspectOptions(dataset_crs="EPSG:4326"))[0]
    with rasterio.open(path) as ds:
        expected = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    assert item.native_crs == "EPSG:32618"
    assert (item.extent.xmin, item.extent.ymin, item.extent.xmax, item.extent.ymax) == (
        pytest.approx(expected, abs=1e-9)
    )
    assert signed_area(item.footprint) < 0
    # 300 m cells in degrees: ratio of the transformed extent
    assert 0.002 < item.low_ps < 0.004
    merc = inspect(path, InspectOptions(dataset_crs="EPSG:3857"))[0]
    assert 300 < merc.low_ps < 350  # projected to projected: centre pixel, scale ~1.06


def test_geostationary_footprint_drops_points_off_the_disk(shared_data: Path) -> None:
    item = inspect(shared_data / "crs/goes.tif", InspectOptions(dataset_crs="EPSG:4326"))[0]
    assert all(math.isfinite(x) and math.isfinite(y) for x, y in item.footprint)
    assert -160 < item.extent.xmin < -150 and 0 < item.extent.xmax < 10
    assert 80 < item.extent.ymax < 82 and -82 < item.extent.ymin < -80


def test_srtm_zip_keeps_real_path(shared_data: Path) -> None:
    item = inspect(shared_data / "dem/N10W110.hgt.zip")[0]
    assert item.path.endswith("N10W110.hgt.zip") and item.name == "N10W110"
    with rasterio.open(item.uri) as ds:
        assert ds.shape == (1201, 1201)


def test_esri_ascii_grid(tmp_path: Path) -> None:
    path = tmp_path / "small.asc"
    path.write_text(
        "ncols 4\nnrows 3\nxllcorner 10.0\nyllcorner 45.0\ncellsize 0.5\nNODATA_value -9999\n"
        "1 2 3 4\n5 -9999 7 8\n9 10 11 12\n"
    )
    (tmp_path / "small.prj").write_text(CRS.from_epsg(4326).to_wkt())
    item = inspect(path)[0]
    assert item.native_crs == "EPSG:4326"
    assert (item.width, item.height) == (4, 3)
    assert item.native_extent.xmin == pytest.approx(10.0)
    assert item.native_extent.ymax == pytest.approx(46.5)
    assert item.nodata == -9999 and item.mask_kind == "nodata"
    assert item.stats[0].count == 11 and item.stats[0].max == 12


def test_asc_without_projection_is_not_georeferenced(tmp_path: Path) -> None:
    path = tmp_path / "noprj.asc"
    path.write_text("ncols 2\nnrows 1\nxllcorner 0\nyllcorner 0\ncellsize 1\n1 2\n")
    with pytest.raises(RasterRejected, match="not georeferenced"):
        inspect(path)


# --- time -------------------------------------------------------------------------------


def test_time_from_modis_file_names(shared_data: Path) -> None:
    folder = shared_data / "timeseries/modis_ndvi"
    times = sorted(inspect(p)[0].time or 0 for p in folder.glob("*.jp2"))
    assert times[0] == ms("2013-09-14T00:00:00") and times[-1] == ms("2014-02-18T00:00:00")
    assert len(times) == 6


def test_time_pattern_option_wins(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "size/byte.tif"
    target = tmp_path / "scene_14-07-2021_x.tif"
    shutil.copy(src, target)
    item = inspect(
        target, InspectOptions(None, time_pattern=r"(?P<d>\d\d)-(?P<m>\d\d)-(?P<Y>\d{4})")
    )
    assert item[0].time == ms("2021-07-14T00:00:00")
    item = inspect(target, InspectOptions(None, time_pattern="%d-%m-%Y"))
    assert item[0].time == ms("2021-07-14T00:00:00")
    assert inspect(target)[0].time is None  # the default patterns look for year first


def test_tiff_datetime_tag(tmp_path: Path) -> None:
    path = tmp_path / "tagged.tif"
    profile = {
        "driver": "GTiff",
        "width": 4,
        "height": 4,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32632",
        "transform": Affine(10, 0, 500000, 0, -10, 5000000),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 4, 4), dtype=np.uint8))
        dst.update_tags(TIFFTAG_DATETIME="2024:05:01 10:20:30")
    item = inspect(path)[0]
    assert item.time == ms("2024-05-01T10:20:30")
    assert item.attributes["time_source"] == "TIFFTAG_DATETIME"


def test_file_name_patterns() -> None:
    assert time_from_name("/x/S2_20240105T103015_B04.tif", None) == ms("2024-01-05T10:30:15")
    assert time_from_name("/x/img_2024_01_05.tif", None) == ms("2024-01-05T00:00:00")
    assert time_from_name("/x/MOD09GA.A2008296.h14v17.hdf", None) == ms("2008-10-22T00:00:00")
    assert time_from_name("/x/2010/image.tif", None) is None
    assert time_from_name("/data/2024/05/01/a.tif", "%Y/%m/%d") == ms("2024-05-01T00:00:00")
    assert time_from_name("/x/a_2024123.tif", "_%Y%j") == ms("2024-05-02T00:00:00")
    assert time_from_tiff_tag("2020:02:29 23:59:59") == ms("2020-02-29T23:59:59")
    assert time_from_tiff_tag("garbage") is None
    with pytest.raises(InvalidParameter):
        compile_pattern(r"(?P<Y>\d{4})")  # no month/day
    with pytest.raises(InvalidParameter):
        compile_pattern("%Y-%q")


def test_cf_time_calendars() -> None:
    assert decode(17927, "days since 1950-01-01 00:00:00", "standard") == ms("1999-01-31T00:00")
    assert decode(1.5, "hours since 2000-01-01T00:00:00Z") == ms("2000-01-01T01:30:00")
    assert decode(0, "hours since 2000-01-01 00:00 -06:00") == ms("2000-01-01T06:00:00")
    assert decode(59, "days since 2001-01-01", "noleap") == ms("2001-03-01T00:00")
    assert decode(59, "days since 2000-01-01", "all_leap") == ms("2000-02-29T00:00")
    assert decode(59, "days since 2000-01-01", "366_day") == ms("2000-02-29T00:00")
    assert decode(59, "days since 2001-01-01", "360_day") == ms("2001-02-28T00:00")  # 30 Feb
    assert decode(45, "days since 2001-01-01", "360_day") == ms("2001-02-16T00:00")
    assert decode(0, "days since 2000-01-01", "julian") == ms("2000-01-14T00:00")
    assert decode(1, "days since 1582-10-04", "gregorian") == ms("1582-10-15T00:00")
    assert decode(1, "days since 1582-10-04", "proleptic_gregorian") == ms("1582-10-05T00:00")
    assert decode(13, "months since 2000-01-31") == ms("2001-02-28T00:00")
    assert decode(2, "years since 2000-01-01", "360_day") == ms("2002-01-01T00:00")
    assert decode(1454328000, "seconds since 1970-01-01 00:00:00") == ms("2016-02-01T12:00")
    with pytest.raises(CFTimeError, match="unsupported calendar"):
        parse_units("days since 2000-01-01", "martian")
    with pytest.raises(CFTimeError):
        parse_units("days after 2000-01-01")
    with pytest.raises(CFTimeError):
        parse_units("fortnights since 2000-01-01")


# --- multidimensional -------------------------------------------------------------------


def test_dimension_roles_and_helpers() -> None:
    tags = {
        "reftime#units": "hours since 2020-01-01",
        "time#units": "hours since 2020-01-01",
        "time#axis": "T",
        "lev#units": "hPa",
        "member#units": "1",
        "time#bounds": "time_bnds",
        "tas#coordinates": "lat lon height",
    }
    roles = dim_roles(["reftime", "time", "lev", "member"], tags)
    assert roles == {"reftime": "other", "time": "time", "lev": "z", "member": "other"}
    assert dim_roles(["t2"], {"t2#units": "days since 2000-01-01"}) == {"t2": "time"}
    helpers = helper_names([tags])
    assert {"time_bnds", "lat", "lon", "height"} <= helpers
    assert is_helper("height", {}, helpers) and is_helper("lat_bnds", {}, set())
    assert is_helper("mask_rho", {}, set()) and not is_helper("tas", {}, helpers)


def test_bcsd_netcdf_slices(shared_data: Path) -> None:
    items = inspect(shared_data / "timeseries/bcsd_obs_1999.nc")
    assert len(items) == 24
    assert collections.Counter(i.variable for i in items) == {"pr": 12, "tas": 12}
    tas = sorted((i for i in items if i.variable == "tas"), key=lambda i: i.time or 0)
    assert tas[0].time == ms("1999-01-31T00:00") and tas[-1].time == ms("1999-12-31T00:00")
    assert all(i.native_crs == "EPSG:4326" for i in items)  # 1-D lon/lat, no grid mapping
    assert tas[0].uri.startswith('netcdf:"') and tas[0].uri.endswith('":tas')
    assert tas[0].bands == (1,) and tas[0].band_names == ("tas",)
    assert tas[0].nodata == pytest.approx(1e20, rel=1e-6) and tas[0].mask_kind == "nodata"
    assert tas[0].native_extent.xmin == pytest.approx(-85.0)
    assert tas[0].stats[0].count == 2080
    assert len({i.name for i in items}) == 24 and tas[0].name == "tas_1999-01-31T00:00:00"
    with rasterio.open(tas[3].uri) as ds:
        assert ds.tags(tas[3].bands[0])["NETCDF_DIM_time"] == "18016"


def test_lambert_netcdf_with_time_bounds(shared_data: Path) -> None:
    items = inspect(shared_data / "multidim/test_lcc.nc")
    assert len(items) == 12
    assert {i.variable for i in items} == {"tas"}  # lat, lon, time_bnds are helpers
    first = min(items, key=lambda i: i.time or 0)
    assert first.time == ms("2010-01-16T12:00")
    assert first.end_time == ms("2010-01-31T12:00")  # time_bnds [0, 30] days
    assert "Lambert_Conformal_Conic" in first.native_crs
    assert first.attributes["unit"] == "Celsius"


def test_arctic_ocean_model_slices(shared_data: Path, manifest: dict[str, Any]) -> None:
    start = time.perf_counter()
    items = inspect(shared_data / "multidim/Arctic20_1to5Feb_2016.nc")
    assert time.perf_counter() - start < 5.0
    counts = collections.Counter(i.variable for i in items)
    assert counts == {
        **dict.fromkeys(("temperature", "salinity", "u", "v"), 85),
        **dict.fromkeys(("aice", "hice", "zeta", "ubar", "vbar"), 5),
        "h": 1,
    }
    temp = [i for i in items if i.variable == "temperature"]
    depths = manifest["multidim/Arctic20_1to5Feb_2016.nc"]["netcdf"]["vertical"]["depth"]
    assert sorted({i.dimensions["StdZ"] for i in temp}) == sorted(-d for d in depths)
    assert {i.time for i in temp} == {ms(f"2016-02-0{d}T12:00") for d in range(1, 6)}
    assert temp[0].attributes["dimension_units"] == {"StdZ": "m"}
    assert temp[0].attributes["z_positive"] == "down"
    assert temp[0].scale == pytest.approx(0.00073253363) and temp[0].offset == 21.0
    assert temp[0].pixel_type == "F32"
    assert -3 < temp[0].stats[0].min < temp[0].stats[0].max < 15  # unpacked, Celsius
    static = [i for i in items if i.variable == "h"]
    assert static[0].time is None and dict(static[0].dimensions) == {}
    assert "+proj=stere" in CRS.from_user_input(temp[0].native_crs).to_proj4()
    assert len({i.name for i in items}) == len(items)
    assert "temperature_2016-02-01T12:00:00_Z-10" in {i.name for i in temp}


def test_multidim_footprints_follow_dataset_crs(shared_data: Path) -> None:
    items = inspect(
        shared_data / "multidim/Arctic20_1to5Feb_2016.nc", InspectOptions(dataset_crs="EPSG:4326")
    )
    ext = items[0].extent
    assert -180 <= ext.xmin < ext.xmax <= 180 and 50 < ext.ymin < ext.ymax <= 90
    assert items[0].native_crs != "EPSG:4326"


def test_grib_messages(shared_data: Path) -> None:
    items = inspect(shared_data / "multidim/nam.t00z.awp21100.tm00.grib2")
    assert len(items) == 181
    assert len({i.name for i in items}) == 181
    assert {i.time for i in items} == {ms("2018-09-17T00:00")}
    # variables named as the file names them; the level type is a dimension (code table 4.5)
    variables = collections.Counter((i.variable, i.dimensions.get("LevelType")) for i in items)
    assert variables[("TMP", 100.0)] == 19 and variables[("TMP", 103.0)] == 1
    assert variables[("VVEL", 100.0)] == 19
    assert not any("_" in (i.variable or "") for i in items)
    isobaric = [i for i in items if i.variable == "TMP" and i.dimensions["LevelType"] == 100]
    assert {i.dimensions["StdZ"] for i in isobaric} >= {85000.0, 50000.0, 100000.0}
    assert isobaric[0].attributes["dimension_units"] == {"StdZ": "Pa"}
    assert isobaric[0].attributes["description"].startswith("Temperature")
    prmsl = next(i for i in items if i.variable == "PRMSL")
    assert "StdZ" not in prmsl.dimensions and prmsl.bands == (1,)
    assert prmsl.dimensions["LevelType"] == 101.0  # mean sea level
    assert "Lambert_Conformal_Conic" in prmsl.native_crs
    keys = {(i.variable, i.time, tuple(sorted(i.dimensions.items()))) for i in items}
    assert len(keys) == 181


def test_single_variable_netcdf(tmp_path: Path) -> None:
    """A NetCDF file with one variable opens without subdatasets: still one item per band."""
    tif = tmp_path / "src.tif"
    profile = {
        "driver": "GTiff",
        "width": 10,
        "height": 8,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": Affine(0.5, 0, 10, 0, -0.5, 50),
        "nodata": -1,
    }
    values = np.arange(80, dtype=np.float32).reshape(1, 8, 10)
    values[0, 0, 5] = -1
    with rasterio.open(tif, "w", **profile) as dst:
        dst.write(values)
    nc = tmp_path / "field_2021-03-04.nc"
    rasterio.shutil.copy(tif, nc, driver="netCDF")
    items = inspect(nc)
    assert len(items) == 1
    item = items[0]
    assert item.variable == "Band1" and item.uri == str(nc) and item.bands == (1,)
    assert item.time == ms("2021-03-04T00:00")  # no time dimension: from the file name
    assert item.native_crs == "EPSG:4326" and item.nodata == -1
    assert item.stats[0].count == 79 and item.stats[0].min == 0  # -1 is nodata, 0 is data


def test_file_crs(shared_data: Path) -> None:
    assert SOURCE.file_crs(str(shared_data / "imagery/RGB.byte.tif")) == "EPSG:32618"
    assert SOURCE.file_crs(str(shared_data / "timeseries/bcsd_obs_1999.nc")) == "EPSG:4326"
    assert SOURCE.file_crs(str(shared_data / "dem/dem.tif")) == "EPSG:2056"
    with pytest.raises(RasterRejected):
        SOURCE.file_crs(str(shared_data / "bad/no_georef.tif"))
