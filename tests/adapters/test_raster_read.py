"""RasterioSource.read: exact native reads, masks, reprojection, overviews, threads, errors."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.warp import reproject, transform, transform_bounds

from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.adapters.raster import read as raster_read
from livemosaic.adapters.raster.read import DatasetCache, thread_cache
from livemosaic.core.models import Extent, RasterItem
from livemosaic.core.ports import InspectOptions, ReadRequest
from livemosaic.errors import InvalidParameter, RasterUnavailable
from tests.conftest import reader_folders

SOURCE = RasterioSource(reader_folders())
PROJECTOR = RasterioProjector()


def item_of(path: Path, index: int = 0, **options: object) -> RasterItem:
    opts = InspectOptions(dataset_crs=None, **options)  # type: ignore[arg-type]
    return SOURCE.inspect(str(path), opts)[index]


def native_request(item: RasterItem, **kw: object) -> ReadRequest:
    return ReadRequest(item.native_extent, item.native_crs, item.width, item.height, **kw)  # type: ignore[arg-type]


def read(item: RasterItem, request: ReadRequest) -> tuple[np.ndarray, np.ndarray]:
    block = SOURCE.read(item, request)
    assert block is not None
    return block.data, block.valid


@pytest.mark.parametrize(
    "rel", ["imagery/RGB.byte.tif", "dem/dem.tif", "mosaic/rgb1.tif", "formats/test.grd"]
)
def test_native_read_is_exact(shared_data: Path, rel: str) -> None:
    item = item_of(shared_data / rel)
    data, valid = read(item, native_request(item))
    with rasterio.open(shared_data / rel) as ds:
        expected = ds.read()
    assert data.dtype == expected.dtype
    assert np.array_equal(data, expected, equal_nan=True)
    assert valid.shape == expected.shape[1:]


def test_netcdf_slice_read_is_exact(shared_data: Path) -> None:
    items = SOURCE.inspect(str(shared_data / "timeseries/bcsd_obs_1999.nc"), InspectOptions(None))
    item = next(i for i in items if i.variable == "tas" and i.bands == (5,))
    data, valid = read(item, native_request(item))
    with rasterio.open(item.uri) as ds:
        expected = ds.read(5)
    assert np.array_equal(data[0], expected)
    assert np.array_equal(valid, expected < 1e19)


def test_packed_netcdf_is_unpacked(shared_data: Path) -> None:
    items = SOURCE.inspect(
        str(shared_data / "multidim/Arctic20_1to5Feb_2016.nc"), InspectOptions(None)
    )
    item = next(i for i in items if i.variable == "temperature" and i.bands == (3,))
    data, valid = read(item, native_request(item))
    with rasterio.open(item.uri) as ds:
        raw = ds.read(3)
    assert data.dtype == np.float32
    ok = raw != -32767
    assert np.array_equal(valid, ok)
    expected = raw.astype(np.float32) * np.float32(item.scale) + np.float32(item.offset)
    assert np.allclose(data[0][ok], expected[ok])
    assert np.isnan(data[0][~ok]).all()


def test_grib_band_read(shared_data: Path) -> None:
    items = SOURCE.inspect(
        str(shared_data / "multidim/nam.t00z.awp21100.tm00.grib2"), InspectOptions(None)
    )
    item = items[40]
    data, valid = read(item, native_request(item))
    with rasterio.open(item.uri) as ds:
        expected = ds.read(item.bands[0])
    assert np.array_equal(data[0], expected) and valid.all()


@pytest.mark.parametrize(
    "rel", ["imagery/RGBA.byte.tif", "imagery/RGB2.byte.tif", "imagery/cogeo.tif", "crs/goes.tif"]
)
def test_masks_match_dataset_mask(shared_data: Path, rel: str) -> None:
    item = item_of(shared_data / rel)
    data, valid = read(item, native_request(item))
    with rasterio.open(shared_data / rel) as ds:
        mask = ds.dataset_mask() > 0
        expected = ds.read(list(item.bands))
    assert np.array_equal(valid, mask)
    assert data.shape[0] == 3 and np.array_equal(data, expected)  # RGBA: alpha not returned


def test_nodata_pixels_are_invalid_in_every_band(shared_data: Path) -> None:
    item = item_of(shared_data / "imagery/RGB.byte.tif")
    data, valid = read(item, native_request(item))
    assert np.array_equal(valid, (data != 0).all(axis=0))


def test_partial_and_missing_overlap(shared_data: Path) -> None:
    item = item_of(shared_data / "imagery/RGB.byte.tif")
    e, dx = item.native_extent, item.cell_size_x * 10
    shifted = ReadRequest(
        Extent(e.xmin - dx, e.ymin, e.xmax - dx, e.ymax), item.native_crs, item.width, item.height
    )
    data, valid = read(item, shifted)
    with rasterio.open(item.uri) as ds:
        expected = ds.read()
    assert np.array_equal(data[:, :, 10:], expected[:, :, :-10])
    assert not valid[:, :10].any()
    far = ReadRequest(Extent(0, 0, 1000, 1000), item.native_crs, 10, 10)
    assert SOURCE.read(item, far) is None
    other_crs = ReadRequest(Extent(100, 10, 110, 20), "EPSG:4326", 10, 10)
    assert SOURCE.read(item, other_crs) is None


def test_band_subset_and_order(shared_data: Path) -> None:
    item = item_of(shared_data / "imagery/RGB.byte.tif")
    block = SOURCE.read(item, native_request(item, bands=(2, 0)))
    assert block is not None
    with rasterio.open(item.uri) as ds:
        assert np.array_equal(block.data, ds.read([3, 1]))
    assert block.band_names == ("Blue", "Red")
    with pytest.raises(InvalidParameter):
        SOURCE.read(item, native_request(item, bands=(3,)))


@pytest.mark.parametrize("dst", ["EPSG:3857", "EPSG:4326"])
def test_reprojected_valid_area_matches_transformed_bounds(shared_data: Path, dst: str) -> None:
    """The valid pixels of a reprojected read cover the transformed valid area of the file."""
    path = shared_data / "imagery/RGB.byte.tif"
    item = item_of(path)
    with rasterio.open(path) as ds:
        native_valid = (ds.read() != 0).all(axis=0)
        rows, cols = np.nonzero(native_valid)
        xs, ys = rasterio.transform.xy(ds.transform, rows, cols)
        tx, ty = transform(ds.crs, dst, np.ravel(xs), np.ravel(ys))
        raster_bounds = transform_bounds(ds.crs, dst, *ds.bounds, densify_pts=21)
    expected = (min(tx), min(ty), max(tx), max(ty))
    width, height = 400, 300
    b = raster_bounds
    pad_x, pad_y = (b[2] - b[0]) * 0.1, (b[3] - b[1]) * 0.1
    ext = Extent(b[0] - pad_x, b[1] - pad_y, b[2] + pad_x, b[3] + pad_y)
    data, valid = read(item, ReadRequest(ext, dst, width, height))
    res_x, res_y = ext.width / width, ext.height / height
    vr = np.flatnonzero(valid.any(axis=1))
    vc = np.flatnonzero(valid.any(axis=0))
    got = (
        ext.xmin + (vc[0] + 0.5) * res_x,
        ext.ymax - (vr[-1] + 0.5) * res_y,
        ext.xmin + (vc[-1] + 0.5) * res_x,
        ext.ymax - (vr[0] + 0.5) * res_y,
    )
    for g, e, r in zip(got, expected, (res_x, res_y, res_x, res_y), strict=True):
        assert abs(g - e) <= 1.5 * r
    assert data.dtype == np.uint8
    assert (data[:, valid] != 0).all()
    # same valid area as rasterio's own reprojection of the native validity
    reference = np.zeros((height, width), dtype=np.uint8)
    reproject(
        native_valid.astype(np.uint8),
        reference,
        src_transform=item_transform(path),
        src_crs=item.native_crs,
        dst_transform=Affine(res_x, 0, ext.xmin, 0, -res_y, ext.ymax),
        dst_crs=dst,
        resampling=Resampling.nearest,
    )
    assert abs(int(valid.sum()) - int(reference.sum())) <= 0.01 * reference.sum()
    assert (valid != (reference > 0)).sum() <= 0.01 * reference.sum()


def item_transform(path: Path) -> Affine:
    with rasterio.open(path) as ds:
        t = ds.transform
    return Affine(t.a, t.b, t.c, t.d, t.e, t.f)


def test_bilinear_reprojection_of_float_dem(shared_data: Path) -> None:
    item = item_of(shared_data / "dem/dem.tif")
    ext = PROJECTOR.transform_extent(item.native_extent, item.native_crs, "EPSG:4326")
    data, valid = read(item, ReadRequest(ext, "EPSG:4326", 120, 100, resampling="bilinear"))
    assert data.dtype == np.float32
    values = data[0][valid]
    assert values.size > 0.9 * 120 * 100 * 0.8
    assert 1615 <= values.min() and values.max() <= 2016


def test_coarse_request_uses_overviews(shared_data: Path) -> None:
    path = shared_data / "size/cog_world.tif"
    item = item_of(path)
    request = ReadRequest(Extent(-180, -90, 180, 90), "EPSG:4326", 1000, 500)
    start = time.perf_counter()
    data, valid = read(item, request)
    assert time.perf_counter() - start < 3.0
    assert any(key[0] == item.uri and key[2] >= 0 for key in thread_cache(SOURCE.confine).keys())
    with rasterio.open(path) as ds:
        expected = ds.read(1, out_shape=(500, 1000))
    assert (data[0] == expected).mean() > 0.99
    assert np.array_equal(valid, data[0] != 0)
    merc = ReadRequest(Extent(-2e7, -2e7, 2e7, 2e7), "EPSG:3857", 512, 512)
    start = time.perf_counter()
    block = SOURCE.read(item, merc)
    assert time.perf_counter() - start < 3.0
    assert block is not None and block.valid.any()


def test_repeated_reads_reuse_handles(shared_data: Path) -> None:
    item = item_of(shared_data / "dem/dem.tif")
    SOURCE.close()
    for _ in range(5):
        read(item, native_request(item))
    assert thread_cache(SOURCE.confine).keys() == [(item.uri, item.file_mtime_ns, -1)]


def test_cache_is_a_bounded_lru(shared_data: Path) -> None:
    cache = DatasetCache(SOURCE.confine, size=2)
    items = [item_of(shared_data / r) for r in ("size/byte.tif", "dem/dem.tif", "crs/shade.tif")]
    for it in items:
        cache.get(it)
    assert [k[0] for k in cache.keys()] == [items[1].uri, items[2].uri]
    cache.clear()
    assert len(cache) == 0


def test_threads_share_one_budget_of_open_handles(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each thread's cache keeps only its share of the process's handle budget."""
    monkeypatch.setattr(raster_read, "HANDLE_BUDGET", 6)
    monkeypatch.setattr(raster_read, "MIN_HANDLES", 1)
    caches = [DatasetCache(SOURCE.confine) for _ in range(3)]  # alive: at most 6 // 3 each
    items = [item_of(shared_data / r) for r in ("size/byte.tif", "dem/dem.tif", "crs/shade.tif")]
    for it in items:
        caches[0].get(it)
    assert caches[0].share() <= 2
    assert len(caches[0]) == caches[0].share()
    for cache in caches:
        cache.clear()


def test_reads_from_many_threads(shared_data: Path) -> None:
    items = [item_of(shared_data / r) for r in ("imagery/RGB.byte.tif", "mosaic/rgb2.tif")]
    requests = [native_request(it) for it in items]
    for it in items:
        ext = PROJECTOR.transform_extent(it.native_extent, it.native_crs, "EPSG:3857")
        requests.append(ReadRequest(ext, "EPSG:3857", 200, 180, resampling="bilinear"))
    jobs = [(items[i % 2], requests[i % 4]) for i in range(4)]
    expected = [read(it, req)[0] for it, req in jobs]

    def work(i: int) -> bool:
        it, req = jobs[i % 4]
        data, _ = read(it, req)
        return bool(np.array_equal(data, expected[i % 4]))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(64)))


def test_read_aligned_with_an_overview_is_exact(shared_data: Path) -> None:
    item = item_of(shared_data / "imagery/TCI.tif")
    request = ReadRequest(item.native_extent, item.native_crs, 549, 549)  # overview factor 2
    data, valid = read(item, request)
    with rasterio.open(item.uri, overview_level=0) as ovr:
        expected = ovr.read()
    assert np.array_equal(data, expected)
    assert np.array_equal(valid, (expected != 0).all(axis=0))


def test_read_failure_is_translated(shared_data: Path) -> None:
    item = item_of(shared_data / "bad/truncated.tif", validate_pixels=False, compute_stats=False)
    with pytest.raises(RasterUnavailable) as info:
        SOURCE.read(item, native_request(item))
    # clients see no server path; the log gets the path and the cause
    assert "truncated.tif" not in str(info.value)
    assert info.value.path.endswith("truncated.tif")
    assert "cannot be read" in info.value.cause


def test_warped_path_is_exact_on_the_native_grid(shared_data: Path) -> None:
    """rgb1.tif's custom WKT is UTM 18N but not *equal* to EPSG:32618, so the warper runs."""
    item = item_of(shared_data / "mosaic/rgb1.tif")
    assert item.native_crs != "EPSG:32618"
    data, valid = read(item, ReadRequest(item.native_extent, "EPSG:32618", item.width, item.height))
    with rasterio.open(item.uri) as ds:
        expected = ds.read()
    assert np.array_equal(data, expected)
    assert np.array_equal(valid, (expected != 0).all(axis=0))


def test_unaligned_request_goes_through_the_warper(shared_data: Path) -> None:
    item = item_of(shared_data / "size/byte.tif")
    e, half = item.native_extent, item.cell_size_x * 0.6
    req = ReadRequest(Extent(e.xmin + half, e.ymin, e.xmax + half, e.ymax), item.native_crs, 20, 20)
    data, valid = read(item, req)
    assert valid[:, :-1].all() and not valid[:, -1].any()
    with rasterio.open(item.uri) as ds:
        source = ds.read(1)
    assert set(np.unique(data[0][valid])) <= set(np.unique(source))


def test_same_crs_downsampling_reads_into_the_output_window(shared_data: Path) -> None:
    """A request in the file's CRS at half its resolution is GDAL's resampled read of the
    window (RasterIO with out_shape), not a warp: the same pixels rasterio returns."""
    item = item_of(shared_data / "crs/world.rgb.tif")
    assert item.mask_kind in ("none", "alpha")
    width, height = item.width // 2, item.height // 2
    request = ReadRequest(item.native_extent, item.native_crs, width, height, "bilinear")
    data, valid = read(item, request)
    with rasterio.open(shared_data / "crs/world.rgb.tif") as ds:
        expected = ds.read(
            list(item.bands),
            out_shape=(item.band_count, height, width),
            resampling=Resampling.bilinear,
        )
    assert valid.all()
    assert np.array_equal(data, expected)


def test_nearest_downsampling_of_a_nodata_source_reads_into_the_output_window(
    shared_data: Path,
) -> None:
    """Nearest needs no kernel, so a source with a nodata value is read straight into the
    output window too, and its nodata pixels stay invalid."""
    item = item_of(shared_data / "mosaic/rgb1.tif")
    assert item.mask_kind == "nodata"
    width, height = item.width // 4, item.height // 4
    request = ReadRequest(item.native_extent, item.native_crs, width, height, "nearest")
    data, valid = read(item, request)
    with rasterio.open(shared_data / "mosaic/rgb1.tif") as ds:
        expected = ds.read(out_shape=(ds.count, height, width), resampling=Resampling.nearest)
    assert np.array_equal(data, expected)
    assert np.array_equal(valid, (expected != item.nodata).all(axis=0))


def write_alpha_item(path: Path, dtype: str, bands: int) -> None:
    """``bands`` integer bands (180..200) plus an alpha band, transparent (and 0) in a disc
    and a ragged west strip: an alpha band GDAL does not take for the bands' mask (it does so
    only for 8- or 16-bit unsigned data with one or three bands)."""
    size = 200
    yy, xx = np.mgrid[0:size, 0:size]
    hole = ((xx - 100) ** 2 + (yy - 100) ** 2 < 41**2) | (xx < 23)
    data = (180 + 20 * np.random.default_rng(7).random((bands, size, size))).astype(dtype)
    data[:, hole] = 0
    alpha = np.where(hole, 0, 255).astype(dtype)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": bands + 1,
        "dtype": dtype,
        "crs": "EPSG:3857",
        "transform": Affine(10.0, 0, 0.0, 0, -10.0, size * 10.0),
        "photometric": "MINISBLACK",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, list(range(1, bands + 1)))
        dst.write(alpha, bands + 1)
        dst.colorinterp = [*dst.colorinterp[:-1], ColorInterp.alpha]


@pytest.mark.parametrize(("dtype", "bands"), [("uint8", 4), ("int16", 1)])
def test_resampled_read_weighs_the_bands_by_their_alpha(
    tmp_path: Path, dtype: str, bands: int
) -> None:
    """A bilinear or cubic read of an item whose alpha band is no GDAL mask never blends the
    transparent pixels' fill into the valid ones; nearest stays GDAL's own read."""
    path = tmp_path / "alpha.tif"
    write_alpha_item(path, dtype, bands)
    item = item_of(path)
    assert item.mask_kind == "alpha" and item.band_count == bands
    for width in (66, 37):
        for resampling in ("bilinear", "cubic"):
            request = ReadRequest(item.native_extent, item.native_crs, width, width, resampling)  # type: ignore[arg-type]
            data, valid = read(item, request)
            assert 0.5 < valid.mean() < 0.9
            assert data[:, valid].min() >= 180 and data[:, valid].max() <= 200, (width, resampling)
        request = ReadRequest(item.native_extent, item.native_crs, width, width, "nearest")
        data, valid = read(item, request)
        with rasterio.open(path) as ds:
            expected = ds.read(out_shape=(bands + 1, width, width), resampling=Resampling.nearest)
        assert np.array_equal(data, expected[:bands])
        assert np.array_equal(valid, expected[bands] > 0)
