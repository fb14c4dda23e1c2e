"""Envelopes in any corner order (spec 7.2): ArcGIS Server orders an envelope's corners itself.

esri-leaflet's ``imageMapLayer`` sends ``bbox=xmin,ymax,xmax,ymin``; other clients send
envelopes whose JSON has min and max swapped. Every envelope a client may send (``bbox`` as
text or JSON, and ``geometry`` envelopes in query, identify and getSamples) is answered as
if its corners were in order. What no ordering can save (zero width or height, NaN,
infinities) stays a 400 that says what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import rasterio

from tests.rest.helpers import LiveServer, error_of, ok_json


@pytest.fixture(scope="module")
def dem_bounds(live: LiveServer) -> tuple[float, float, float, float]:
    with rasterio.open(live.data / "dem/dem.tif") as ds:
        b = ds.bounds
    return b.left, b.bottom, b.right, b.top


def post(client: httpx.Client, live: LiveServer, service: str, op: str, **params: Any) -> Any:
    params.setdefault("f", "json")
    for key, value in list(params.items()):
        if isinstance(value, dict | list):
            params[key] = json.dumps(value)
    return client.post(live.svc(service) + "/" + op, data=params)


def inner(bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box in the middle of the DEM (a quarter of its width and height)."""
    x0, y0, x1, y1 = bounds
    w, h = x1 - x0, y1 - y0
    return x0 + 0.375 * w, y0 + 0.375 * h, x0 + 0.625 * w, y0 + 0.625 * h


def test_leaflet_bbox_order_exports_the_same_image(
    client: httpx.Client, live: LiveServer, dem_bounds: tuple[float, float, float, float]
) -> None:
    xmin, ymin, xmax, ymax = inner(dem_bounds)
    base = {"f": "image", "format": "png", "size": "64,64", "bboxSR": "2056"}
    ordered = client.get(
        live.svc("dem") + "/exportImage", params={**base, "bbox": f"{xmin},{ymin},{xmax},{ymax}"}
    )
    leaflet = client.get(
        live.svc("dem") + "/exportImage", params={**base, "bbox": f"{xmin},{ymax},{xmax},{ymin}"}
    )
    assert ordered.content.startswith(b"\x89PNG"), ordered.text[:300]
    assert leaflet.content.startswith(b"\x89PNG"), leaflet.text[:300]
    assert leaflet.content == ordered.content


@pytest.mark.parametrize(
    "order", ["xmax,ymin,xmin,ymax", "xmax,ymax,xmin,ymin", "xmin,ymax,xmax,ymin"]
)
def test_bbox_text_in_any_corner_order(
    client: httpx.Client,
    live: LiveServer,
    dem_bounds: tuple[float, float, float, float],
    order: str,
) -> None:
    box = dict(zip(("xmin", "ymin", "xmax", "ymax"), inner(dem_bounds), strict=True))
    bbox = ",".join(str(box[k]) for k in order.split(","))
    body = ok_json(post(client, live, "dem", "exportImage", bbox=bbox, size="50,50",
                        adjustAspectRatio="false"))  # fmt: skip
    got = body["extent"]
    for key, value in box.items():
        assert got[key] == pytest.approx(value), (key, got)


def test_bbox_json_with_swapped_corners(
    client: httpx.Client, live: LiveServer, dem_bounds: tuple[float, float, float, float]
) -> None:
    xmin, ymin, xmax, ymax = inner(dem_bounds)
    swapped = {"xmin": xmax, "ymin": ymax, "xmax": xmin, "ymax": ymin,
               "spatialReference": {"wkid": 2056}}  # fmt: skip
    body = ok_json(post(client, live, "dem", "exportImage", bbox=swapped, size="50,50",
                        adjustAspectRatio="false"))  # fmt: skip
    got = body["extent"]
    assert (got["xmin"], got["ymin"], got["xmax"], got["ymax"]) == pytest.approx(
        (xmin, ymin, xmax, ymax)
    )


def test_query_geometry_envelopes_in_any_order(
    client: httpx.Client, live: LiveServer, dem_bounds: tuple[float, float, float, float]
) -> None:
    xmin, ymin, xmax, ymax = inner(dem_bounds)
    kind = {"geometryType": "esriGeometryEnvelope", "returnGeometry": "false"}
    ordered = ok_json(post(client, live, "dem", "query", geometry=f"{xmin},{ymin},{xmax},{ymax}",
                           **kind))  # fmt: skip
    assert len(ordered["features"]) == 1
    for geometry in (
        f"{xmin},{ymax},{xmax},{ymin}",
        f"{xmax},{ymin},{xmin},{ymax}",
        {"xmin": xmax, "ymin": ymax, "xmax": xmin, "ymax": ymin},
        {"xmin": xmin, "ymin": ymax, "xmax": xmax, "ymax": ymin},
    ):
        body = ok_json(post(client, live, "dem", "query", geometry=geometry, **kind))
        assert body["features"] == ordered["features"], geometry


def test_identify_and_samples_with_swapped_envelopes(
    client: httpx.Client, live: LiveServer, dem_bounds: tuple[float, float, float, float]
) -> None:
    xmin, ymin, xmax, ymax = inner(dem_bounds)
    ordered = {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}
    swapped = {"xmin": xmax, "ymin": ymax, "xmax": xmin, "ymax": ymin}
    kind = {"geometryType": "esriGeometryEnvelope"}
    a = ok_json(post(client, live, "dem", "getSamples", geometry=ordered, sampleCount=9, **kind))
    b = ok_json(post(client, live, "dem", "getSamples", geometry=swapped, sampleCount=9, **kind))
    assert a["samples"] and a["samples"] == b["samples"]
    a = ok_json(post(client, live, "dem", "identify", geometry=ordered, **kind))
    b = ok_json(post(client, live, "dem", "identify", geometry=swapped, **kind))
    assert a["value"] == b["value"]


DEGENERATE = [
    ("2600000,1200000,2600000,1210000", "zero width"),
    ("2600000,1200000,2610000,1200000", "zero height"),
    ("2600000,nan,2610000,1210000", "not a finite number"),
    ("2600000,1200000,inf,1210000", "not a finite number"),
    ("-inf,1200000,2610000,1210000", "not a finite number"),
]


@pytest.mark.parametrize(("bbox", "reason"), DEGENERATE)
def test_degenerate_bbox_is_refused(
    client: httpx.Client, live: LiveServer, bbox: str, reason: str
) -> None:
    r = post(client, live, "dem", "exportImage", bbox=bbox, size="50,50")
    err = error_of(r)
    assert err["code"] == 400
    assert any("bbox" in d and reason in d for d in err["details"]), err


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ({"xmin": 1, "ymin": 2, "xmax": 1, "ymax": 5}, "zero width"),
        ({"xmin": 1, "ymin": 2, "xmax": 3, "ymax": 2}, "zero height"),
        ('{"xmin": 1, "ymin": 2, "xmax": 1e400, "ymax": 5}', "not a finite number"),
    ],
)
@pytest.mark.parametrize(("op", "param"), [("exportImage", "bbox"), ("query", "geometry"),
                                           ("getSamples", "geometry"), ("identify", "geometry")])  # fmt: skip
def test_degenerate_envelopes_are_refused_everywhere(
    client: httpx.Client,
    live: LiveServer,
    envelope: dict[str, float] | str,
    reason: str,
    op: str,
    param: str,
) -> None:
    r = post(client, live, "dem", op, geometryType="esriGeometryEnvelope", **{param: envelope})
    err = error_of(r)
    assert err["code"] == 400
    assert any(param in d and reason in d for d in err["details"]), err
