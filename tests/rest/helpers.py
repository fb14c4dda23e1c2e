"""Helpers shared by the REST tests: the live-server handle and response checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from rasterio.io import MemoryFile

from livemosaic.app import AppContext
from livemosaic.core.models import RasterItem
from livemosaic.core.ports import ItemQuery
from livemosaic.settings import Settings


@dataclass
class LiveServer:
    """What tests need to talk to, and check against, the running server."""

    base: str  # http://127.0.0.1:port
    root: str  # http://127.0.0.1:port/arcgis
    ctx: AppContext
    settings: Settings
    data: Path
    quarters: dict[str, Path]

    def svc(self, name: str) -> str:
        """Path of an image service (``Folder/Name`` or ``Name``)."""
        return f"/arcgis/rest/services/{name}/ImageServer"

    def items(self, dataset: str, query: ItemQuery | None = None) -> list[RasterItem]:
        """Catalog items of a dataset, straight from the store."""
        return self.ctx.catalog.find_items(dataset, query or ItemQuery())

    def item_by_path(self, dataset: str, path: Path) -> RasterItem:
        """The (first) item of a file."""
        found = [it for it in self.items(dataset) if Path(it.path).resolve() == path.resolve()]
        assert found, f"{path} is not in {dataset}"
        return found[0]


def ok_json(response: httpx.Response) -> Any:
    """The JSON body of a successful response (fails on an error envelope)."""
    assert response.status_code == 200, response.text[:500]
    assert "json" in response.headers["content-type"], response.headers["content-type"]
    body = response.json()
    assert not (isinstance(body, dict) and "error" in body), body
    return body


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an envelope response (shape checked)."""
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err["code"], int) and isinstance(err["message"], str)
    assert isinstance(err["details"], list) and all(isinstance(d, str) for d in err["details"])
    return dict(err)


def read_tiff(content: bytes) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_], dict[str, Any]]:
    """(bands, valid mask, profile) of GeoTIFF bytes."""
    assert content[:4] in (b"II*\x00", b"MM\x00*"), content[:16]
    with MemoryFile(content) as mem, mem.open() as ds:
        data = ds.read()
        valid = ds.dataset_mask() > 0
        profile = {
            "crs": ds.crs,
            "transform": ds.transform,
            "bounds": ds.bounds,
            "nodata": ds.nodata,
            "dtype": ds.dtypes[0],
            "count": ds.count,
            "width": ds.width,
            "height": ds.height,
        }
    return data, valid, profile


NEAREST = "RSP_NearestNeighbor"


def export(client: httpx.Client, live: LiveServer, service: str, **params: Any) -> httpx.Response:
    """GET exportImage (JSON-valued parameters may be given as objects); fails on errors."""
    params.setdefault("f", "image")
    for key in ("mosaicRule", "renderingRule", "bbox"):
        if isinstance(params.get(key), dict | list):
            params[key] = json.dumps(params[key])
    r = client.get(live.svc(service) + "/exportImage", params=params)
    assert r.status_code == 200, r.text[:300]
    if params["f"] == "image":
        assert "json" not in r.headers["content-type"], r.text[:500]
    return r


def bbox_of(bounds: Any) -> str:
    """A rasterio BoundingBox as bbox text."""
    return f"{bounds.left},{bounds.bottom},{bounds.right},{bounds.top}"
