"""``RasterioSource``: the ``core.ports.RasterSource`` implementation (inspect + read)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

from livemosaic.adapters.raster.confine import Confinement, apply_gdal_config
from livemosaic.adapters.raster.inspect import file_crs, inspect_file
from livemosaic.adapters.raster.read import read_item, thread_cache
from livemosaic.core.models import RasterItem
from livemosaic.core.ports import InspectOptions, PixelBlock, ReadRequest
from livemosaic.errors import LiveMosaicError, RasterRejected, RasterUnavailable

T = TypeVar("T")


class RasterioSource:
    """Reads raster files with rasterio/GDAL: items at ingest, warped blocks at request time.

    Reads nothing outside ``folders`` (the registered data folders; see
    :mod:`livemosaic.adapters.raster.confine`) and nothing over the network except under
    ``object_store_prefixes``. Building one sets the GDAL options that back this up for the
    process. Safe to share between threads: every thread keeps its own cache of open datasets.
    """

    def __init__(
        self,
        folders: Iterable[str | os.PathLike[str]],
        *,
        object_store_prefixes: Iterable[str] = (),
        object_store_timeout_seconds: float = 30.0,
    ) -> None:
        self.confine = Confinement.of(folders, object_store_prefixes, object_store_timeout_seconds)
        apply_gdal_config(self.confine)

    def inspect(self, path: str, options: InspectOptions) -> list[RasterItem]:
        """Every item a file holds (one per slice for multidimensional files)."""
        return _guard(path, lambda: inspect_file(path, options, self.confine))

    def file_crs(self, path: str) -> str:
        """The CRS of a file ("EPSG:n", "ESRI:n" or WKT)."""
        return _guard(path, lambda: file_crs(path, self.confine))

    def read(self, item: RasterItem, request: ReadRequest) -> PixelBlock | None:
        """Item pixels resampled onto the request grid; None when nothing overlaps.

        A file that cannot be read, or that now leads outside the data folders, raises
        RasterUnavailable (the exporter skips the item and logs it).
        """
        try:
            return _guard(item.path, lambda: read_item(item, request, self.confine))
        except RasterRejected as exc:
            raise RasterUnavailable(item.path, exc.reason) from exc

    def close(self) -> None:
        """Close the datasets this thread keeps open."""
        thread_cache(self.confine).clear()


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
