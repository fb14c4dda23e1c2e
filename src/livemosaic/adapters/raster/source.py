"""``RasterioSource``: the ``core.ports.RasterSource`` implementation (inspect + read)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from livemosaic.adapters.raster.inspect import file_crs, inspect_file
from livemosaic.adapters.raster.read import read_item, thread_cache
from livemosaic.core.models import RasterItem
from livemosaic.core.ports import InspectOptions, PixelBlock, ReadRequest
from livemosaic.errors import LiveMosaicError, RasterRejected, RasterUnavailable

T = TypeVar("T")


class RasterioSource:
    """Reads raster files with rasterio/GDAL: items at ingest, warped blocks at request time.

    Safe to share between threads: every thread keeps its own cache of open datasets.
    """

    def inspect(self, path: str, options: InspectOptions) -> list[RasterItem]:
        """Every item a file holds (one per slice for multidimensional files)."""
        return _guard(path, lambda: inspect_file(path, options))

    def file_crs(self, path: str) -> str:
        """The CRS of a file ("EPSG:n", "ESRI:n" or WKT)."""
        return _guard(path, lambda: file_crs(path))

    def read(self, item: RasterItem, request: ReadRequest) -> PixelBlock | None:
        """Item pixels resampled onto the request grid; None when nothing overlaps."""
        try:
            return _guard(item.path, lambda: read_item(item, request))
        except RasterRejected as exc:
            raise RasterUnavailable(item.path, exc.reason) from exc

    def close(self) -> None:
        """Close the datasets this thread keeps open."""
        thread_cache().clear()


def _guard(path: str, call: Callable[[], T]) -> T:
    """Run ``call``; any non-livemosaic failure becomes RasterRejected for ``path``."""
    try:
        return call()
    except LiveMosaicError:
        raise
    except Exception as exc:  # never leak rasterio/GDAL exceptions
        raise RasterRejected(
            path,
            f"the file cannot be processed ({type(exc).__name__}: {exc}).",
            next_step="Check that the file is a complete, georeferenced raster.",
        ) from exc
