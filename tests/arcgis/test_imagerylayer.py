"""The real ArcGIS API for Python reads livemosaic image services (spec 11, items 1–2).

Every client call runs in the arcgis environment (``scripts/imagery_layer.py``,
``scripts/directory.py``); one run per service records each step, and each test asserts one
step against what rasterio reads from the source files or what the server returns for the same
request in another format.

Client limits against a standalone server (not livemosaic's doing):

* ``ServicesDirectory(url)`` needs ``all_ssl=False`` on plain HTTP (see ``scripts/_common.py``).
* ``ImageryLayer(url)`` without ``gis`` builds an anonymous ``GIS()`` for www.arcgis.com; the
  scripts pass the ServicesDirectory's ``Connection`` instead.
* ``ImageryLayer.refresh_service()`` needs a portal (``gis._tools``); Refresh Service is
  driven through ``import_toolbox`` instead (test_refresh_toolbox.py).
* ``FeatureSet.sdf`` fails inside arcgis 2.4.4 with pandas 3 (``GeoAccessor`` import), so the
  scripts read ``FeatureSet.features``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from PIL import Image
from rasterio.io import MemoryFile

from livemosaic.core.models import RasterItem
from livemosaic.core.ports import ItemQuery
from tests.arcgis.helpers import paths_of, run_client, step
from tests.liveserver import LiveServer

pytestmark = pytest.mark.arcgis

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
NEAREST = "RSP_NearestNeighbor"


def items(server: LiveServer, dataset: str) -> list[RasterItem]:
    """Catalog items of a dataset, straight from the store."""
    return server.ctx.catalog.find_items(dataset, ItemQuery())


def read_item(item: RasterItem) -> npt.NDArray[Any]:
    """The pixels of one catalog item as rasterio reads them (bands, rows, cols)."""
    with rasterio.open(item.uri) as ds:
        return np.asarray(ds.read(list(item.bands)))


def rest_tiff(
    server: LiveServer, service: str, extent: dict[str, Any], size: list[int], rule: Any
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """The server's own GeoTIFF for an export request: (bands, valid mask)."""
    params = {
        "bbox": f"{extent['xmin']},{extent['ymin']},{extent['xmax']},{extent['ymax']}",
        "bboxSR": json.dumps(extent["spatialReference"]),
        "size": f"{size[0]},{size[1]}",
        "format": "tiff",
        "interpolation": NEAREST,
        "mosaicRule": json.dumps(rule),
        "f": "image",
    }
    r = httpx.get(server.service_url(service) + "/exportImage", params=params, timeout=120)
    assert r.status_code == 200 and r.content[:4] in (b"II*\x00", b"MM\x00*"), r.text[:300]
    with MemoryFile(r.content) as mem, mem.open() as ds:
        return ds.read(), ds.dataset_mask() > 0


def png_pixels(path: Path) -> npt.NDArray[Any]:
    """RGBA pixels of an image file the client saved."""
    data = path.read_bytes()
    assert data[:8] == PNG, data[:16]
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGBA"))


# ---------------------------------------------------------------------------------------------
# ServicesDirectory


@pytest.fixture(scope="module")
def directory(arcgis_python: Path, arcgis_live: LiveServer) -> dict[str, Any]:
    """Results of scripts/directory.py."""
    return dict(run_client(arcgis_python, "directory.py", arcgis_live.root))


def test_directory_connects_anonymously_as_a_server(directory: dict[str, Any]) -> None:
    con = step(directory, "connection")
    assert con["auth"] == "ANON" and con["product"] == "SERVER", con
    assert con["baseurl"].endswith("/arcgis/rest/services/"), con


def test_directory_lists_folders_and_services(
    directory: dict[str, Any], arcgis_live: LiveServer
) -> None:
    # System (the GP service, publishers only) may be hidden from anonymous callers
    assert set(step(directory, "folders")) - {"System"} == {"Live"}
    assert sorted(step(directory, "list_root")) == [
        ["ImageryLayer", arcgis_live.service_url("imagery")],
        ["ImageryLayer", arcgis_live.service_url("ocean")],
    ]
    assert step(directory, "list_live") == [
        ["ImageryLayer", arcgis_live.service_url("Live/climate")]
    ]


def test_directory_finds_services_by_name(
    directory: dict[str, Any], arcgis_live: LiveServer
) -> None:
    assert step(directory, "get_imagery") == ["ImageryLayer", arcgis_live.service_url("imagery")]
    assert step(directory, "find_climate") == [
        "ImageryLayer",
        arcgis_live.service_url("Live/climate"),
    ]
    assert step(directory, "get_missing") is None


# ---------------------------------------------------------------------------------------------
# ImageryLayer on an RGB mosaic


@pytest.fixture(scope="module")
def rgb(
    arcgis_python: Path, arcgis_live: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Results of scripts/imagery_layer.py on ``imagery`` (filter_by the second item)."""
    out = tmp_path_factory.mktemp("client_imagery")
    second = items(arcgis_live, "imagery")[1].id
    options = {"size": [64, 64], "filter_where": f"OBJECTID = {second}"}
    mark = arcgis_live.log.mark()
    results = dict(
        run_client(
            arcgis_python,
            "imagery_layer.py",
            arcgis_live.root,
            "imagery",
            str(out),
            json.dumps(options),
        )
    )
    results["_requests"] = arcgis_live.log.since(mark)
    return results


def union_bounds(paths: list[Path]) -> tuple[float, float, float, float]:
    """Union of the files' bounds (all in one CRS)."""
    boxes = []
    for p in paths:
        with rasterio.open(p) as ds:
            boxes.append(tuple(ds.bounds))
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def rgb_files(server: LiveServer) -> list[Path]:
    """The files of the ``imagery`` mosaic."""
    return sorted((server.data / "mosaic").glob("rgb*.tif"))


def test_properties_and_extent(rgb: dict[str, Any], arcgis_live: LiveServer) -> None:
    props = step(rgb, "properties")
    assert props["bandCount"] == 3 and props["pixelType"] == "U8"
    assert props["hasMultidimensions"] is False
    xmin, ymin, xmax, ymax = union_bounds(rgb_files(arcgis_live))
    extent = step(rgb, "extent")
    got = (extent["xmin"], extent["ymin"], extent["xmax"], extent["ymax"])
    assert got == pytest.approx((xmin, ymin, xmax, ymax), abs=1e-6)
    assert extent == props["initialExtent"]
    with rasterio.open(rgb_files(arcgis_live)[0]) as ds:
        # livemosaic reports LowPS (the mean of the x and y cell sizes, ArcGIS's catalog
        # convention) as pixelSizeX and pixelSizeY; these files' cells are 300.038 x 300.042
        assert props["pixelSizeX"] == pytest.approx(ds.res[0], rel=1e-4)
        assert props["pixelSizeY"] == pytest.approx(ds.res[1], rel=1e-4)
    acc = step(rgb, "accessors")
    assert acc["band_count"] == 3 and acc["pixel_type"] == "U8" and acc["tiles_only"] is False
    assert acc["raster_info"]["pixelSizeY"] == pytest.approx(props["pixelSizeY"])


def test_export_image_png_to_file(rgb: dict[str, Any]) -> None:
    path = Path(step(rgb, "export_png"))
    assert path.name == "export.png" and path.is_file()
    pixels = png_pixels(path)
    assert pixels.shape == (256, 256, 4)
    opaque = pixels[..., 3] > 0
    assert opaque.mean() > 0.5, "the mosaic covers most of its own extent"
    assert len(np.unique(pixels[opaque][:, :3], axis=0)) > 100, "the image is not blank"


def test_export_image_default_format_bytes(rgb: dict[str, Any]) -> None:
    got = step(rgb, "export_bytes")
    data = Path(got["path"]).read_bytes()
    assert len(data) == got["length"] > 0
    assert data[:8] == PNG or data[:3] == JPEG, data[:16]  # jpgpng
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (128, 96)


def test_export_image_json_href_downloads(rgb: dict[str, Any]) -> None:
    got = step(rgb, "export_json")
    assert (got["width"], got["height"]) == (200, 100)
    assert {"xmin", "ymin", "xmax", "ymax", "spatialReference"} <= set(got["extent"])
    r = httpx.get(got["href"], timeout=60)
    assert r.status_code == 200 and r.content[:8] in (PNG,) or r.content[:3] == JPEG
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (200, 100)


def test_export_numpy_lerc_matches_server_tiff(
    rgb: dict[str, Any], arcgis_live: LiveServer
) -> None:
    got = step(rgb, "export_numpy")
    array = np.load(got["path"])
    assert array.shape == (64, 64, 3)
    rule = step(rgb, "accessors")["mosaic_rule"]
    tiff, valid = rest_tiff(arcgis_live, "imagery", step(rgb, "extent"), [64, 64], rule)
    assert valid.mean() > 0.5
    assert np.array_equal(np.moveaxis(array, -1, 0)[:, valid], tiff[:, valid])


def test_query_counts_ids_and_features(rgb: dict[str, Any], arcgis_live: LiveServer) -> None:
    ids = sorted(int(it.id or 0) for it in items(arcgis_live, "imagery"))
    assert step(rgb, "query_count") == len(ids) == 4
    assert step(rgb, "query_ids") == {"objectIdFieldName": "OBJECTID", "objectIds": ids}
    everything = step(rgb, "query_all")
    assert everything["ids"] == ids and everything["geometry_type"] == "esriGeometryPolygon"
    assert {"OBJECTID", "Name", "MinPS", "MaxPS", "LowPS", "HighPS"} <= set(everything["fields"])
    ring = everything["first_geometry"]["rings"][0]
    assert ring[0] == ring[-1] and len(ring) >= 4
    some = step(rgb, "query_where")
    assert sorted(f["attributes"]["OBJECTID"] for f in some["features"]) == [
        i for i in ids if i <= 2
    ]


def samples_at(paths: list[Path], x: float, y: float) -> dict[Path, list[int]]:
    """Pixel values of each file containing (x, y) (files in the service CRS)."""
    out: dict[Path, list[int]] = {}
    for p in paths:
        with rasterio.open(p) as ds:
            b = ds.bounds
            if b.left <= x < b.right and b.bottom < y <= b.top:
                out[p] = [int(v) for v in next(ds.sample([(x, y)]))]
    return out


def test_identify_returns_the_source_pixel(rgb: dict[str, Any], arcgis_live: LiveServer) -> None:
    got = step(rgb, "identify")
    assert got["name"] == "Pixel"
    loc = got["location"]
    expected = samples_at(rgb_files(arcgis_live), loc["x"], loc["y"])
    assert expected, loc
    values = [int(v) for v in got["value"].split(",")]
    assert values in expected.values(), (values, expected)
    assert got["catalogItems"]["features"], got["catalogItems"]


def test_get_samples_names_the_item(rgb: dict[str, Any], arcgis_live: LiveServer) -> None:
    (sample,) = step(rgb, "get_samples")
    loc = sample["location"]
    by_id = {it.id: Path(it.path) for it in items(arcgis_live, "imagery")}
    source = by_id[sample["rasterId"]]
    expected = samples_at([source], loc["x"], loc["y"])[source]
    assert [int(v) for v in sample["value"].split()] == expected  # space-separated (ArcGIS)
    assert sample["values"] == expected
    assert sample["attributes"]["OBJECTID"] == sample["rasterId"]
    assert sample["attributes"]["Name"] == source.stem


def test_key_properties_histograms_statistics(rgb: dict[str, Any]) -> None:
    keys = step(rgb, "key_properties")
    assert [b["BandName"] for b in keys["BandProperties"]] == ["Red", "Green", "Blue"]
    assert keys["LowCellSize"] == pytest.approx(step(rgb, "properties")["pixelSizeX"])
    hists = step(rgb, "histograms")
    assert len(hists) == 3
    for h in hists:
        assert h["size"] == len(h["counts"]) == 256 and sum(h["counts"]) > 0
    stats = step(rgb, "statistics")["statistics"]
    assert len(stats) == 3
    for s in stats:
        assert s["min"] <= s["mean"] <= s["max"] and s["standardDeviation"] > 0


def test_catalog_item(rgb: dict[str, Any], arcgis_live: LiveServer) -> None:
    first = items(arcgis_live, "imagery")[0]
    attrs = step(rgb, "catalog_item")["attributes"]
    assert attrs["OBJECTID"] == first.id and attrs["Name"] == first.name


def test_filter_by_locks_rasters(rgb: dict[str, Any], arcgis_live: LiveServer) -> None:
    second = items(arcgis_live, "imagery")[1]
    got = step(rgb, "filter_by")
    assert got["mosaic_rule"]["mosaicMethod"] == "esriMosaicLockRaster"
    assert got["mosaic_rule"]["lockRasterIds"] == [second.id]
    array = np.load(got["path"])
    tiff, valid = rest_tiff(
        arcgis_live, "imagery", step(rgb, "extent"), [64, 64], got["mosaic_rule"]
    )
    assert 0.05 < valid.mean() < 0.75, "one of four tiles"
    assert np.array_equal(np.moveaxis(array, -1, 0)[:, valid], tiff[:, valid])


def test_anonymous_client_sends_no_token(rgb: dict[str, Any]) -> None:
    requests = rgb["_requests"]
    assert requests, "the client made requests"
    for r in requests:
        assert "x-esri-authorization" not in r.headers, paths_of([r])
        assert "token=" not in r.query and b"token=" not in r.body, paths_of([r])


# ---------------------------------------------------------------------------------------------
# ImageryLayer on multidimensional NetCDF


def slice_of(server: LiveServer, dataset: str, variable: str, index: int) -> RasterItem:
    """The ``index``-th slice (by time) of a variable."""
    found = sorted(
        (it for it in items(server, dataset) if it.variable == variable),
        key=lambda it: it.time or 0,
    )
    return found[index]


@pytest.fixture(scope="module")
def climate(
    arcgis_python: Path, arcgis_live: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Results of scripts/imagery_layer.py on ``Live/climate`` (tas in March 1999)."""
    out = tmp_path_factory.mktemp("client_climate")
    tas = slice_of(arcgis_live, "climate", "tas", 2)
    options = {
        "size": [81, 33],  # the native grid: exports are pixel for pixel
        "md_def": [{"variableName": "tas", "dimensionName": "StdTime", "values": [tas.time]}],
        "time": tas.time,
        "multidim": True,
    }
    return dict(
        run_client(
            arcgis_python,
            "imagery_layer.py",
            arcgis_live.root,
            "Live/climate",
            str(out),
            json.dumps(options),
        )
    )


def assert_slice(array: npt.NDArray[Any], item: RasterItem) -> None:
    """A client array (1, rows, cols, 1) equals the item's pixels wherever they are valid."""
    assert array.shape == (1, 33, 81, 1)
    source = read_item(item)[0]
    valid = source < 1e19  # _FillValue 1e20
    assert valid.mean() > 0.5
    assert np.array_equal(array[0, :, :, 0][valid], source[valid])


def test_multidimensional_properties(climate: dict[str, Any], arcgis_live: LiveServer) -> None:
    props = step(climate, "properties")
    assert props["hasMultidimensions"] is True and props["pixelType"] == "F32"
    times = [it.time for it in items(arcgis_live, "climate")]
    assert props["timeInfo"]["timeExtent"] == [min(times), max(times)]
    info = step(climate, "multidimensional_info")["multidimensionalInfo"]
    assert [v["name"] for v in info["variables"]] == ["pr", "tas"]
    for var in info["variables"]:
        (dim,) = var["dimensions"]
        assert dim["name"] == "StdTime" and dim["extent"] == [min(times), max(times)]
    assert step(climate, "key_properties")["DefaultVariable"] == "pr"


def test_multidimensional_export_selects_the_slice(
    climate: dict[str, Any], arcgis_live: LiveServer
) -> None:
    assert_slice(
        np.load(step(climate, "export_md")["path"]), slice_of(arcgis_live, "climate", "tas", 2)
    )


def test_default_export_shows_the_first_slice_of_the_default_variable(
    climate: dict[str, Any], arcgis_live: LiveServer
) -> None:
    assert_slice(
        np.load(step(climate, "export_numpy")["path"]), slice_of(arcgis_live, "climate", "pr", 0)
    )


def test_time_filter_on_export_and_query(climate: dict[str, Any], arcgis_live: LiveServer) -> None:
    tas = slice_of(arcgis_live, "climate", "tas", 2)
    assert_slice(
        np.load(step(climate, "export_time")["path"]), slice_of(arcgis_live, "climate", "pr", 2)
    )
    found = step(climate, "query_time")["features"]
    assert sorted(f["attributes"]["Variable"] for f in found) == ["pr", "tas"]
    assert {f["attributes"]["StdTime"] for f in found} == {tas.time}


def test_multidimensional_identify_and_samples(
    climate: dict[str, Any], arcgis_live: LiveServer
) -> None:
    tas = slice_of(arcgis_live, "climate", "tas", 2)
    exported = np.load(step(climate, "export_md")["path"])[0, :, :, 0]
    ident = step(climate, "identify_md")
    (sample,) = step(climate, "get_samples_md")
    assert sample["rasterId"] == tas.id
    assert float(ident["value"]) == pytest.approx(float(sample["value"]))
    extent = step(climate, "extent")
    col = int((sample["location"]["x"] - extent["xmin"]) / 0.125)
    row = int((extent["ymax"] - sample["location"]["y"]) / 0.125)
    assert float(sample["value"]) == pytest.approx(float(exported[row, col]))


def test_slices(climate: dict[str, Any]) -> None:
    """ImageryLayer.slices() lists every variable x time slice (2 variables x 12 months)."""
    result = step(climate, "slices")
    slices = result["slices"] if isinstance(result, dict) else result
    assert len(slices) == 24
    first = slices[0]
    assert first["sliceId"] == 0
    assert first["multidimensionalDefinition"][0]["dimensionName"] == "StdTime"


@pytest.fixture(scope="module")
def ocean(
    arcgis_python: Path, arcgis_live: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Results of scripts/imagery_layer.py on ``ocean`` (maxRecordCount 100)."""
    out = tmp_path_factory.mktemp("client_ocean")
    mark = arcgis_live.log.mark()
    results = dict(
        run_client(
            arcgis_python,
            "imagery_layer.py",
            arcgis_live.root,
            "ocean",
            str(out),
            json.dumps({"multidim": True}),
        )
    )
    results["_requests"] = arcgis_live.log.since(mark)
    return results


def test_query_all_records_pages_with_in_lists(
    ocean: dict[str, Any], arcgis_live: LiveServer
) -> None:
    ids = sorted(int(it.id or 0) for it in items(arcgis_live, "ocean"))
    assert len(ids) > 100 == step(ocean, "properties")["maxRecordCount"]
    assert step(ocean, "query_count") == len(ids)
    assert step(ocean, "query_all")["ids"] == ids
    paged = [
        r for r in ocean["_requests"] if r.path.lower().endswith("/query") and b"+in+%28" in r.body
    ]
    assert len(paged) == -(-len(ids) // 100), paths_of(ocean["_requests"])


def test_depth_dimension_in_multidimensional_info(ocean: dict[str, Any]) -> None:
    info = step(ocean, "multidimensional_info")["multidimensionalInfo"]
    by_name = {v["name"]: v for v in info["variables"]}
    dims = {d["name"] for d in by_name["temperature"]["dimensions"]}
    assert dims == {"StdTime", "StdZ"}
    assert by_name["h"]["dimensions"] == []
