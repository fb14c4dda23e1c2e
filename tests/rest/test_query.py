"""Catalog query (spec 6.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import rasterio
from rasterio.warp import transform as warp_transform

from livemosaic.core.fields import CATALOG_FIELDS
from tests.rest.helpers import LiveServer, ok_json


def query(client: httpx.Client, live: LiveServer, service: str, **params: Any) -> Any:
    params.setdefault("f", "json")
    for key, value in list(params.items()):
        if isinstance(value, dict | list):
            params[key] = json.dumps(value)
    return ok_json(client.post(live.svc(service) + "/query", data=params))


def ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=UTC).timestamp() * 1000)


def signed_area(ring: list[list[float]]) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False)) / 2


def test_all_items_with_all_fields_and_footprints(client: httpx.Client, live: LiveServer) -> None:
    body = query(client, live, "imagery", where="1=1", outFields="*")
    assert body["objectIdFieldName"] == "OBJECTID"
    assert body["geometryType"] == "esriGeometryPolygon"
    assert (
        body["spatialReference"]
        == ok_json(client.get(live.svc("imagery"), params={"f": "json"}))["spatialReference"]
    )
    assert [f["name"] for f in body["fields"]] == [f.name for f in CATALOG_FIELDS]
    assert len(body["features"]) == 4 and "exceededTransferLimit" not in body
    for feature in body["features"]:
        ring = feature["geometry"]["rings"][0]
        assert ring[0] == ring[-1]
        assert signed_area(ring) < 0  # clockwise outer ring
        assert feature["attributes"]["BandCount"] == 3
        assert feature["attributes"]["PixelType"] == "U8"


def test_default_out_fields_is_objectid(client: httpx.Client, live: LiveServer) -> None:
    body = query(client, live, "imagery", returnGeometry="false")
    assert all(set(f["attributes"]) == {"OBJECTID"} for f in body["features"])
    assert all("geometry" not in f for f in body["features"])


def test_object_ids_where_and_order(client: httpx.Client, live: LiveServer) -> None:
    ids = sorted(it.id or 0 for it in live.items("imagery"))
    body = query(
        client, live, "imagery", objectIds=f"{ids[1]},{ids[3]}", where="1=0", outFields="OBJECTID"
    )
    assert sorted(f["attributes"]["OBJECTID"] for f in body["features"]) == [ids[1], ids[3]]
    body = query(client, live, "imagery", where="Name LIKE '%rgb2%' OR Name LIKE '%rgb3%'", outFields="Name",
                 orderByFields="Name DESC", returnGeometry="false")  # fmt: skip
    names = [f["attributes"]["Name"] for f in body["features"]]
    assert len(names) == 2 and names == sorted(names, reverse=True)
    body = query(
        client, live, "imagery", where=f"OBJECTID IN ({ids[0]}, {ids[2]})", returnGeometry="false"
    )
    assert sorted(f["attributes"]["OBJECTID"] for f in body["features"]) == [ids[0], ids[2]]


def test_counts_ids_extent(client: httpx.Client, live: LiveServer) -> None:
    assert query(client, live, "imagery", returnCountOnly="true") == {"count": 4}
    ids = query(client, live, "imagery", returnIdsOnly="true")
    assert ids["objectIdFieldName"] == "OBJECTID"
    assert sorted(ids["objectIds"]) == sorted(it.id for it in live.items("imagery"))
    ext = query(client, live, "imagery", returnExtentOnly="true")
    info = ok_json(client.get(live.svc("imagery"), params={"f": "json"}))
    assert ext["count"] == 4
    for k in ("xmin", "ymin", "xmax", "ymax"):
        assert abs(ext["extent"][k] - info["extent"][k]) < 1e-6


def test_paging_is_complete_and_flags_more(client: httpx.Client, live: LiveServer) -> None:
    seen: list[int] = []
    offset = 0
    while True:
        page = query(client, live, "climate", resultOffset=offset, resultRecordCount=5, orderByFields="OBJECTID",
                     returnGeometry="false")  # fmt: skip
        seen += [f["attributes"]["OBJECTID"] for f in page["features"]]
        offset += 5
        if not page.get("exceededTransferLimit"):
            break
        assert len(page["features"]) == 5
    assert sorted(seen) == sorted(it.id for it in live.items("climate")) and len(seen) == len(
        set(seen)
    )


def test_max_record_count_caps_pages(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("ocean"), params={"f": "json"}))
    assert info["maxRecordCount"] == 100
    total = query(client, live, "ocean", returnCountOnly="true")["count"]
    assert total > 100
    page = query(client, live, "ocean", returnGeometry="false")
    assert len(page["features"]) == 100 and page["exceededTransferLimit"] is True
    page = query(client, live, "ocean", returnGeometry="false", resultRecordCount=500)
    assert len(page["features"]) == 100
    assert len(query(client, live, "ocean", returnIdsOnly="true")["objectIds"]) == total


def test_time_filter(client: httpx.Client, live: LiveServer) -> None:
    body = query(
        client,
        live,
        "Live/ndvi",
        time=f"{ms(2013, 10, 1)},{ms(2013, 12, 31)}",
        outFields="AcquisitionDate",
    )
    dates = sorted(f["attributes"]["AcquisitionDate"] for f in body["features"])
    assert dates == [ms(2013, 10, 16), ms(2013, 11, 17), ms(2013, 12, 19)]
    body = query(client, live, "Live/ndvi", time=f"null,{ms(2013, 10, 16)}", returnCountOnly="true")
    assert body["count"] == 2
    body = query(client, live, "Live/ndvi", time=f"{ms(2014, 1, 17)}.7", returnCountOnly="true")
    assert body["count"] == 1


def test_geometry_point_envelope_polygon_and_in_sr(client: httpx.Client, live: LiveServer) -> None:
    rgb1 = live.item_by_path("imagery", live.data / "mosaic/rgb1.tif")
    with rasterio.open(live.data / "mosaic/rgb1.tif") as ds:
        b, crs = ds.bounds, ds.crs
    # a point well inside rgb1 and outside the other tiles
    x, y = b.left + 0.1 * (b.right - b.left), b.top - 0.1 * (b.top - b.bottom)
    body = query(client, live, "imagery", geometry=f"{x},{y}", geometryType="esriGeometryPoint")
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [rgb1.id]
    env = {
        "xmin": b.left - 1e6,
        "ymin": b.bottom - 1e6,
        "xmax": b.left - 5e5,
        "ymax": b.bottom - 5e5,
    }
    assert (
        query(client, live, "imagery", geometry=env, geometryType="esriGeometryEnvelope")[
            "features"
        ]
        == []
    )
    whole = {
        "xmin": b.left - 1e6,
        "ymin": b.bottom - 1e6,
        "xmax": b.right + 1e6,
        "ymax": b.top + 1e6,
    }
    assert (
        len(
            query(client, live, "imagery", geometry=whole, geometryType="esriGeometryEnvelope")[
                "features"
            ]
        )
        == 4
    )
    tri = {"rings": [[[x, y], [x + 1000, y], [x, y - 1000], [x, y]]]}
    body = query(client, live, "imagery", geometry=tri, geometryType="esriGeometryPolygon")
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [rgb1.id]
    lon, lat = warp_transform(crs, "EPSG:4326", [x], [y])
    pt = {"x": lon[0], "y": lat[0], "spatialReference": {"wkid": 4326}}
    body = query(client, live, "imagery", geometry=pt, geometryType="esriGeometryPoint")
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [rgb1.id]
    body = query(
        client,
        live,
        "imagery",
        geometry=f"{lon[0]},{lat[0]}",
        inSR=4326,
        spatialRel="esriSpatialRelWithin",
    )
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [rgb1.id]


def test_out_sr_reprojects_footprints(client: httpx.Client, live: LiveServer) -> None:
    body = query(client, live, "dem", outSR=4326)
    assert body["spatialReference"]["wkid"] == 4326
    ring = body["features"][0]["geometry"]["rings"][0]
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        lon, lat = warp_transform(ds.crs, "EPSG:4326", [ds.bounds.left], [ds.bounds.top])
    assert min(abs(p[0] - lon[0]) + abs(p[1] - lat[0]) for p in ring) < 1e-6
    assert signed_area(ring) < 0


def test_distinct_values_and_statistics(client: httpx.Client, live: LiveServer) -> None:
    body = query(
        client,
        live,
        "climate",
        outFields="Variable",
        returnDistinctValues="true",
        returnGeometry="false",
    )
    assert sorted(f["attributes"]["Variable"] for f in body["features"]) == ["pr", "tas"]
    stats = [
        {"statisticType": "count", "onStatisticField": "OBJECTID", "outStatisticFieldName": "n"},
        {"statisticType": "min", "onStatisticField": "StdTime", "outStatisticFieldName": "first"},
        {"statisticType": "max", "onStatisticField": "StdTime", "outStatisticFieldName": "last"},
    ]
    body = query(
        client, live, "climate", outStatistics=stats, groupByFieldsForStatistics="Variable"
    )
    rows = {f["attributes"]["Variable"]: f["attributes"] for f in body["features"]}
    assert rows["tas"]["n"] == 12 and rows["pr"]["n"] == 12
    info = ok_json(client.get(live.svc("climate"), params={"f": "json"}))
    assert [rows["tas"]["first"], rows["tas"]["last"]] == info["timeInfo"]["timeExtent"]


def test_multidimensional_definition_filter(client: httpx.Client, live: LiveServer) -> None:
    md = [{"variableName": "tas", "dimensionName": "", "values": []}]
    body = query(
        client,
        live,
        "climate",
        multidimensionalDefinition=md,
        outFields="Variable",
        returnGeometry="false",
    )
    assert len(body["features"]) == 12
    assert {f["attributes"]["Variable"] for f in body["features"]} == {"tas"}


def test_catalog_items(client: httpx.Client, live: LiveServer) -> None:
    item = live.item_by_path("dem", live.data / "dem/dem.tif")
    base = live.svc("dem") + f"/{item.id}"
    one = ok_json(client.get(base, params={"f": "json"}))
    assert one["attributes"]["OBJECTID"] == item.id
    assert one["geometry"]["rings"][0][0] == one["geometry"]["rings"][0][-1]
    info = ok_json(client.get(base + "/info", params={"f": "json"}))
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        assert abs(info["pixelSizeX"] - ds.res[0]) < 1e-9
        assert abs(info["extent"]["xmin"] - ds.bounds.left) < 1e-6
    assert info["bandCount"] == 1 and info["pixelType"] == "F32" and len(info["statistics"]) == 1
    kp = ok_json(client.get(base + "/info/keyProperties", params={"f": "json"}))
    assert kp["BandProperties"] and kp["LowCellSize"] > 0
    thumb = client.get(base + "/thumbnail")
    assert thumb.status_code == 200 and thumb.content[:2] in (b"\xff\xd8", b"\x89P")
    image = client.get(base + "/image", params={"f": "image", "format": "png", "size": "40,40"})
    assert image.content.startswith(b"\x89PNG")
    missing = client.get(live.svc("dem") + "/999999", params={"f": "json"}).json()
    assert missing["error"]["code"] == 404


def test_query_html_form_runs(client: httpx.Client, live: LiveServer) -> None:
    page = client.get(live.svc("imagery") + "/query", params={"where": "1=1", "outFields": "Name"})
    assert page.headers["content-type"].startswith("text/html")
    assert "rgb1" in page.text and "features" in page.text
