"""The image service resource (spec 5) and its descriptive children (6.6–6.8)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import rasterio
from rasterio.warp import transform_bounds

from livemosaic.core.fields import CATALOG_FIELDS
from tests.rest.helpers import LiveServer, error_of, ok_json

SECTION_5_1 = [
    "currentVersion", "serviceDescription", "name", "description", "copyrightText", "capabilities",
    "serviceSourceType", "extent", "initialExtent", "fullExtent", "spatialReference", "pixelSizeX",
    "pixelSizeY", "bandCount", "bandNames", "pixelType", "minPixelSize", "maxPixelSize", "minScale",
    "maxScale", "serviceDataType", "minValues", "maxValues", "meanValues", "stdvValues",
    "objectIdField", "fields", "hasMultidimensions", "hasHistograms", "hasColormap",
    "hasRasterAttributeTable", "allowRasterFunction", "rasterFunctionInfos", "defaultMosaicMethod",
    "allowedMosaicMethods", "sortField", "sortValue", "sortAscending", "mosaicOperator",
    "defaultCompressionQuality", "defaultResamplingMethod", "maxImageHeight", "maxImageWidth",
    "maxRecordCount", "maxDownloadImageCount", "maxDownloadSizeLimit", "maxMosaicImageCount",
    "mensurationCapabilities", "supportsStatistics", "supportsAdvancedQueries",
    "useStandardizedQueries", "advancedQueryCapabilities", "exportTilesAllowed",
    "singleFusedMapCache", "datasetFormat", "compressionType", "uncompressedSize", "blockWidth",
    "blockHeight", "allowCopy", "allowAnalysis", "allowComputeTiePoints", "editFieldsInfo",
    "ownershipBasedAccessControlForRasters",
]  # fmt: skip


def ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=UTC).timestamp() * 1000)


def test_every_field_of_5_1(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("imagery"), params={"f": "json"}))
    missing = [k for k in SECTION_5_1 if k not in info]
    assert not missing
    for forbidden in ("owningSystemUrl", "serviceItemId", "hasLiveData", "tileInfo"):
        assert forbidden not in info
    assert info["name"] == "imagery"
    assert info["capabilities"] == "Image,Metadata,Catalog"
    assert info["serviceSourceType"] == "esriImageServiceSourceTypeMosaicDataset"
    assert info["bandCount"] == 3 and len(info["bandNames"]) == 3
    assert info["pixelType"] == "U8"
    for key in ("minValues", "maxValues", "meanValues", "stdvValues"):
        assert len(info[key]) == 3
    assert info["objectIdField"] == "OBJECTID"
    assert [f["name"] for f in info["fields"]] == [f.name for f in CATALOG_FIELDS]
    assert info["maxImageWidth"] == live.settings.max_image_width
    assert info["maxImageHeight"] == live.settings.max_image_height
    assert info["maxRecordCount"] == live.settings.max_record_count
    assert info["rasterFunctionInfos"][0]["name"] == "None"
    assert info["singleFusedMapCache"] is False and info["hasMultidimensions"] is False
    assert "timeInfo" not in info


def test_extent_and_pixel_size_match_the_files(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("imagery"), params={"f": "json"}))
    xmin = ymin = float("inf")
    xmax = ymax = float("-inf")
    res = float("inf")
    for i in range(1, 5):
        with rasterio.open(live.data / f"mosaic/rgb{i}.tif") as ds:
            b = ds.bounds
            xmin, ymin, xmax, ymax = (
                min(xmin, b.left),
                min(ymin, b.bottom),
                max(xmax, b.right),
                max(ymax, b.top),
            )
            res = min(res, ds.res[0])
    ext = info["extent"]
    assert abs(ext["xmin"] - xmin) < 1e-3 and abs(ext["xmax"] - xmax) < 1e-3
    assert abs(ext["ymin"] - ymin) < 1e-3 and abs(ext["ymax"] - ymax) < 1e-3
    assert ext["spatialReference"] == info["spatialReference"]
    assert info["initialExtent"] == ext and info["fullExtent"] == ext
    assert abs(info["pixelSizeX"] - res) / res < 1e-4  # LowPS: one cell size for x and y
    # js: ceil(extentWidth / pixelSizeX - 0.1) must give the mosaic width
    assert round((xmax - xmin) / info["pixelSizeX"]) == round(
        (ext["xmax"] - ext["xmin"]) / info["pixelSizeX"]
    )


def test_web_mercator_service_reference(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("live/MULTICRS"), params={"f": "json"}))
    assert info["name"] == "multicrs"
    assert info["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    ext = info["extent"]
    with rasterio.open(live.data / "imagery/cogeo.tif") as ds:
        cogeo = ds.bounds
    assert ext["xmin"] <= cogeo.left and ext["xmax"] >= cogeo.right
    west, _s, east, _n = transform_bounds(
        "EPSG:3857", "EPSG:4326", ext["xmin"], ext["ymin"], ext["xmax"], ext["ymax"]
    )
    assert west < -179 and east > 179  # world.rgb spans the globe


def test_time_info_of_a_time_series(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("Live/ndvi"), params={"f": "json"}))
    ti = info["timeInfo"]
    assert ti["startTimeField"] == "AcquisitionDate" and ti["endTimeField"] == "AcquisitionDate"
    assert ti["timeExtent"] == [ms(2013, 9, 14), ms(2014, 2, 18)]
    assert ti["hasLiveData"] is True
    assert "hasLiveData" not in info
    other = ok_json(client.get(live.svc("climate"), params={"f": "json"}))
    assert other["timeInfo"]["startTimeField"] == "StdTime"
    assert other["timeInfo"]["hasLiveData"] is False
    assert other["hasMultidimensions"] is True
    assert other["defaultVariable"] in ("pr", "tas")


def test_nodata_and_float_dem(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("dem"), params={"f": "json"}))
    assert info["pixelType"] == "F32" and info["bandCount"] == 1
    assert info["noDataValue"] == -9999 and info["noDataValues"] == [-9999]
    assert info["defaultResamplingMethod"] == "NearestNeighbor"
    assert info["allowedMosaicMethods"] == "NorthWest,Center,LockRaster,None"
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        band = ds.read(1, masked=True)
    assert abs(info["minValues"][0] - float(band.min())) < 1e-3
    assert abs(info["maxValues"][0] - float(band.max())) < 1e-3


def test_metadata_caching_headers(client: httpx.Client, live: LiveServer) -> None:
    r = client.get(live.svc("imagery"), params={"f": "json"})
    snapshot = live.ctx.registry.get("", "imagery")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-livemosaic-service-version"] == str(snapshot.version)
    etag = r.headers["etag"]
    again = client.get(live.svc("imagery"), params={"f": "json"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    other = client.get(live.svc("dem"), params={"f": "json"})
    assert other.headers["etag"] != etag


def test_version_header_on_every_service_response(client: httpx.Client, live: LiveServer) -> None:
    version = str(live.ctx.registry.get("", "dem").version)
    for path, params in [
        ("", {"f": "json"}), ("", {}), ("/keyProperties", {"f": "json"}),
        ("/query", {"f": "json", "where": "1=1"}), ("/exportImage", {"f": "image", "size": "10,10"}),
        ("/exportImage", {"f": "json", "size": "0,0"}), ("/nope", {"f": "json"}),
    ]:  # fmt: skip
        r = client.get(live.svc("dem") + path, params=params)
        assert r.headers.get("x-livemosaic-service-version") == version, path


def test_key_properties_statistics_function_infos(client: httpx.Client, live: LiveServer) -> None:
    kp = ok_json(client.get(live.svc("imagery") + "/keyProperties", params={"f": "json"}))
    assert kp["DataType"] == "Generic" and len(kp["BandProperties"]) == 3
    info = ok_json(client.get(live.svc("imagery"), params={"f": "json"}))
    stats = ok_json(client.get(live.svc("imagery") + "/statistics", params={"f": "json"}))[
        "statistics"
    ]
    assert [s["min"] for s in stats] == info["minValues"]
    assert [s["standardDeviation"] for s in stats] == info["stdvValues"]
    rfi = ok_json(client.get(live.svc("imagery") + "/rasterFunctionInfos", params={"f": "json"}))
    assert rfi == {"rasterFunctionInfos": info["rasterFunctionInfos"]}


def test_every_offered_raster_function_runs_by_name(client: httpx.Client, live: LiveServer) -> None:
    """rasterFunctionInfos lists more than None, and each entry draws when a client asks for
    it by name alone, as clients pick them from that list."""
    offered = {}
    for service in ("imagery", "dem"):
        names = [
            f["name"]
            for f in ok_json(
                client.get(live.svc(service) + "/rasterFunctionInfos", params={"f": "json"})
            )["rasterFunctionInfos"]
        ]
        offered[service] = names
        for name in names:
            r = client.get(
                live.svc(service) + "/exportImage",
                params={
                    "size": "64,64",
                    "format": "png",
                    "f": "image",
                    "renderingRule": f'{{"rasterFunction":"{name}"}}',
                },
            )
            assert r.headers["content-type"] == "image/png", (service, name, r.text[:300])
    assert offered["imagery"] == ["None", "NDVI"]
    assert offered["dem"] == ["None", "Hillshade", "Slope", "Aspect"]


def test_histograms(client: httpx.Client, live: LiveServer) -> None:
    info = ok_json(client.get(live.svc("imagery"), params={"f": "json"}))
    assert info["hasHistograms"] is True
    hist = ok_json(client.get(live.svc("imagery") + "/histograms", params={"f": "json"}))[
        "histograms"
    ]
    assert len(hist) == 3
    for h in hist:
        assert h["size"] == 256 and len(h["counts"]) == 256
        assert h["min"] == -0.5 and h["max"] == 255.5
        assert sum(h["counts"]) > 1000
    dem = ok_json(client.get(live.svc("dem") + "/histograms", params={"f": "json"}))["histograms"][
        0
    ]
    assert 1615 < dem["min"] < dem["max"] < 2016  # elevation range of dem.tif, no -9999


def test_stopped_service(client: httpx.Client, live: LiveServer) -> None:
    for path in ("", "/exportImage", "/query"):
        r = client.get(live.svc("stopped") + path, params={"f": "json"})
        err = error_of(r)
        assert err["code"] == 500 and err["message"] == "Service 'stopped' is not started."
        assert r.headers.get("x-livemosaic-service-version")
    listing = ok_json(client.get("/arcgis/rest/services", params={"f": "json"}))
    assert {"name": "stopped", "type": "ImageServer"} in listing["services"]


def test_unknown_service_is_404(client: httpx.Client) -> None:
    err = error_of(client.get("/arcgis/rest/services/nothing/ImageServer", params={"f": "json"}))
    assert err["code"] == 404 and err["message"] == "Service not found."
    err = error_of(client.get("/arcgis/rest/services/dem/MapServer", params={"f": "json"}))
    assert err["code"] == 404


def test_a_refresh_changes_version_and_etag(client: httpx.Client, live: LiveServer) -> None:
    before = client.get(live.svc("weather"), params={"f": "json"})
    _previous, snapshot = live.ctx.publisher.republish("", "weather")
    after = client.get(live.svc("weather"), params={"f": "json"})
    assert int(after.headers["x-livemosaic-service-version"]) == snapshot.version
    assert snapshot.version > int(before.headers["x-livemosaic-service-version"])
    assert after.headers["etag"] != before.headers["etag"]
    stale = client.get(
        live.svc("weather"), params={"f": "json"}, headers={"If-None-Match": before.headers["etag"]}
    )
    assert stale.status_code == 200


def test_requests_during_refreshes_never_fail(client: httpx.Client, live: LiveServer) -> None:
    def worker(rounds: int) -> list[int]:
        seen = []
        for i in range(rounds):
            if i % 3 == 0:
                r = client.get(
                    live.svc("climate") + "/exportImage",
                    params={"f": "image", "size": "32,32", "format": "png"},
                )
                assert r.content.startswith(b"\x89PNG")
            else:
                r = client.get(live.svc("climate"), params={"f": "json"})
                assert ok_json(r)["name"] == "climate"
            seen.append(int(r.headers["x-livemosaic-service-version"]))
        return seen

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(worker, 12) for _ in range(4)]
        for _ in range(5):
            live.ctx.publisher.republish("", "climate")
        results = [f.result(timeout=120) for f in futures]
    final = live.ctx.registry.get("", "climate").version
    for seen in results:
        assert (
            seen == sorted(seen) and seen[-1] <= final
        )  # never an older version after a newer one
