"""Thematic rasters (land cover): palette and attribute table served, nearest neighbour by
default, drawn with the palette; generated with GDAL (rasterio) in the test."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from tests.liveserver import LiveServer, add_dataset, make_server
from tests.rest.helpers import read_tiff

CLASSES = {  # value: (name, colour) — the NLCD legend
    11: ("Open Water", (70, 107, 159)),
    21: ("Developed, Open Space", (222, 197, 197)),
    41: ("Deciduous Forest", (104, 171, 95)),
    82: ("Cultivated Crops", (171, 108, 40)),
    90: ("Woody Wetlands", (186, 216, 234)),
}
SIZE = 64
CELL = 30.0
ORIGIN = (500000.0, 4000000.0)


def land_cover() -> np.ndarray:
    """Blocks of classes with sharp edges (bilinear resampling would blend their codes)."""
    codes = np.array(sorted(CLASSES), dtype=np.uint8)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    data = codes[((rows // 8) + (cols // 8) * 3) % len(codes)]
    data[:4, :4] = 0  # nodata
    return data.astype(np.uint8)


def write_land_cover(path: Path, *, palette: bool = True, rat: bool = True) -> None:
    data = land_cover()
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 1, "dtype": "uint8",
               "crs": "EPSG:32617", "transform": from_origin(*ORIGIN, CELL, CELL), "nodata": 0}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        if palette:
            ds.write_colormap(1, {v: (*rgb, 255) for v, (_, rgb) in CLASSES.items()})
    if rat:  # GDAL keeps GeoTIFF attribute tables in the PAM sidecar
        values, counts = np.unique(data[data != 0], return_counts=True)
        rows = "".join(
            f'<Row index="{i}"><F>{v}</F><F>{c}</F><F>{CLASSES[int(v)][0]}</F>'
            + "".join(f"<F>{x}</F>" for x in CLASSES[int(v)][1])
            + "</Row>"
            for i, (v, c) in enumerate(zip(values, counts, strict=True))
        )
        fields = [("Value", 0, 5), ("Count", 0, 1), ("ClassName", 2, 2), ("Red", 0, 6),
                  ("Green", 0, 7), ("Blue", 0, 8)]  # fmt: skip
        defs = "".join(
            f'<FieldDefn index="{i}"><Name>{n}</Name><Type>{t}</Type><Usage>{u}</Usage></FieldDefn>'
            for i, (n, t, u) in enumerate(fields)
        )
        Path(str(path) + ".aux.xml").write_text(
            '<PAMDataset><PAMRasterBand band="1"><GDALRasterAttributeTable tableType="thematic">'
            f"{defs}{rows}</GDALRasterAttributeTable></PAMRasterBand></PAMDataset>"
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("thematic")
    data = work / "rasters"
    data.mkdir()
    write_land_cover(data / "landcover.tif")
    write_land_cover(data / "paletted.tif", rat=False)
    write_land_cover(data / "codes_with_rat.tif", palette=False)

    def populate(ctx: AppContext, ing: Ingestor, folder: Path) -> None:
        for name in ("landcover", "paletted", "codes_with_rat"):
            add_dataset(ing, name, [folder / f"{name}.tif"])
            ctx.publisher.publish(ServiceDefinition(name=name, dataset=name))
        add_dataset(ing, "dem", [shared_data / "dem/dem.tif"])
        ctx.publisher.publish(ServiceDefinition(name="dem", dataset="dem"))

    with make_server(work, data, populate, data_folders=[data, shared_data]) as live:
        yield live


def _get(live: LiveServer, service: str, resource: str = "", **params: Any) -> httpx.Response:
    params.setdefault("f", "json")
    url = live.service_url(service) + (f"/{resource}" if resource else "")
    return httpx.get(url, params=params, timeout=60)


def test_service_info_flags(server: LiveServer) -> None:
    info = _get(server, "landcover").json()
    assert info["hasColormap"] is True and info["hasRasterAttributeTable"] is True
    assert info["serviceDataType"] == "esriImageServiceDataTypeThematic"
    paletted = _get(server, "paletted").json()
    assert paletted["hasColormap"] is True and paletted["hasRasterAttributeTable"] is False
    rat_only = _get(server, "codes_with_rat").json()  # colours from the table's columns
    assert rat_only["hasColormap"] is True and rat_only["hasRasterAttributeTable"] is True
    dem = _get(server, "dem").json()
    assert dem["hasColormap"] is False and dem["hasRasterAttributeTable"] is False
    assert dem["serviceDataType"] == "esriImageServiceDataTypeGeneric"


@pytest.mark.parametrize("service", ["landcover", "paletted", "codes_with_rat"])
def test_colormap_resource(server: LiveServer, service: str) -> None:
    body = _get(server, service, "colormap").json()
    table = {entry[0]: tuple(entry[1:]) for entry in body["colormap"]}
    for value, (_, rgb) in CLASSES.items():
        assert table[value] == rgb
    assert all(len(entry) == 4 for entry in body["colormap"])


def test_colormap_of_a_service_without_one_is_a_400(server: LiveServer) -> None:
    body = _get(server, "dem", "colormap").json()
    assert body["error"]["code"] == 400
    body = _get(server, "paletted", "rasterAttributeTable").json()
    assert body["error"]["code"] == 400


def test_raster_attribute_table_resource(server: LiveServer) -> None:
    body = _get(server, "landcover", "rasterAttributeTable").json()
    assert body["objectIdFieldName"] == "OBJECTID"
    types = {f["name"]: f["type"] for f in body["fields"]}
    assert types == {
        "OBJECTID": "esriFieldTypeOID",
        "Value": "esriFieldTypeInteger",
        "Count": "esriFieldTypeInteger",
        "ClassName": "esriFieldTypeString",
        "Red": "esriFieldTypeInteger",
        "Green": "esriFieldTypeInteger",
        "Blue": "esriFieldTypeInteger",
    }
    rows = [f["attributes"] for f in body["features"]]
    data = land_cover()
    assert {r["Value"]: r["ClassName"] for r in rows} == {v: n for v, (n, _) in CLASSES.items()}
    assert {r["Value"]: r["Count"] for r in rows} == {v: int((data == v).sum()) for v in CLASSES}


def test_legend_lists_the_classes_with_their_colours(server: LiveServer) -> None:
    body = _get(server, "landcover", "legend").json()
    (layer,) = body["layers"]
    assert layer["legendType"] == "Unique Values" and layer["layerType"] == "Raster Layer"
    by_label = {e["label"]: e for e in layer["legend"]}
    assert set(by_label) == {name for name, _ in CLASSES.values()}
    water = by_label["Open Water"]
    assert water["values"] == [11] and water["contentType"] == "image/png"
    swatch = Image.open(io.BytesIO(base64.b64decode(water["imageData"]))).convert("RGB")
    assert swatch.size == (20, 20) and swatch.getpixel((10, 10)) == CLASSES[11][1]
    # a palette without a table: the classes present, labelled by value
    labels = [e["label"] for e in _get(server, "paletted", "legend").json()["layers"][0]["legend"]]
    assert labels == [str(v) for v in sorted(CLASSES)]
    # other services: stretched (one band) legend
    dem = _get(server, "dem", "legend").json()["layers"][0]
    assert dem["legendType"] == "Stretched" and dem["legend"][0]["label"].startswith("High")


def _export(server: LiveServer, service: str, **params: Any) -> httpx.Response:
    # a grid finer than the data and offset from it: any interpolation would blend classes
    x0, y1 = ORIGIN
    bbox = f"{x0 + 7},{y1 - SIZE * CELL + 11},{x0 + SIZE * CELL - 13},{y1 - 5}"
    params = {"bbox": bbox, "size": "157,149", "f": "image", **params}
    r = _get(server, service, "exportImage", **params)
    assert r.status_code == 200 and "json" not in r.headers["content-type"], r.text[:300]
    return r


def test_export_uses_nearest_neighbour_by_default(server: LiveServer) -> None:
    data, valid, _ = read_tiff(_export(server, "landcover", format="tiff").content)
    found = set(np.unique(data[0][valid]).tolist())
    assert found <= set(CLASSES), found - set(CLASSES)  # no invented class codes
    assert found == set(CLASSES)
    # asking for bilinear still gives bilinear (the request decides)
    data, valid, _ = read_tiff(
        _export(
            server, "landcover", format="tiff", interpolation="RSP_BilinearInterpolation"
        ).content
    )
    assert not set(np.unique(data[0][valid]).tolist()) <= set(CLASSES)


def test_export_is_drawn_with_the_palette_unless_a_rule_says_otherwise(server: LiveServer) -> None:
    image = Image.open(io.BytesIO(_export(server, "landcover", format="png32").content))
    rgba = np.asarray(image.convert("RGBA"))
    opaque = rgba[..., 3] > 0
    colours = {tuple(int(c) for c in px) for px in rgba[opaque][:, :3]}
    assert colours == {rgb for _, rgb in CLASSES.values()}
    assert not opaque[0, 0]  # nodata stays transparent
    # the table's colours draw a file without a palette
    rat_only = Image.open(io.BytesIO(_export(server, "codes_with_rat", format="png32").content))
    assert np.array_equal(np.asarray(rat_only.convert("RGBA")), rgba)
    # an explicit None rule gives the class codes themselves
    raw = _export(
        server, "landcover", format="png", renderingRule=json.dumps({"rasterFunction": "None"})
    )
    gray = np.asarray(Image.open(io.BytesIO(raw.content)).convert("LA"))
    codes = set(np.unique(gray[..., 0][gray[..., 1] > 0]).tolist())
    assert codes <= set(CLASSES) and len(codes) == len(CLASSES)


def test_ingest_stores_palette_table_and_classes(server: LiveServer) -> None:
    from livemosaic.core.ports import ItemQuery
    from livemosaic.core.thematic import thematic_of_item

    (item,) = server.ctx.catalog.find_items("landcover", ItemQuery())
    thematic = thematic_of_item(item)
    assert thematic is not None and thematic.table is not None
    assert thematic.classes == tuple(sorted(CLASSES))
    assert {v: (r, g, b) for v, r, g, b in thematic.palette if v in CLASSES} == {
        v: rgb for v, (_, rgb) in CLASSES.items()
    }
