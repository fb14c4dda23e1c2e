"""External overviews (``.ovr``) for GeoTIFFs that have none, so small scales read fast.

Only plain GeoTIFFs larger than one overview tile get overviews; COGs and other formats
(NetCDF, JPEG 2000, …) carry their own. The overviews go into ``<file>.ovr`` beside the file
(GDAL finds it there; the watcher ignores ``.ovr`` sidecars); the raster itself is never
modified. A stale ``.ovr`` (older than its file) is rebuilt.
"""

from __future__ import annotations

import os
from pathlib import Path

import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError

from livemosaic.errors import RasterRejected

MIN_SIZE = 256  # levels are added until the longer side is at most this many pixels


def overview_factors(width: int, height: int, min_size: int = MIN_SIZE) -> list[int]:
    """Decimation factors 2, 4, 8, … until a level is at most ``min_size`` pixels wide."""
    size = max(width, height)
    factors: list[int] = []
    factor = 1
    while size // factor > min_size:
        factor *= 2
        factors.append(factor)
    return factors


def needs_overviews(path: str) -> bool:
    """True for a GeoTIFF without internal or current external overviews."""
    ovr = Path(path + ".ovr")
    with rasterio.open(path) as ds:
        if ds.driver != "GTiff":
            return False
        if ds.overviews(1):
            return _stale(path, ovr)
        return bool(overview_factors(ds.width, ds.height))


def _stale(path: str, ovr: Path) -> bool:
    """True when the overviews come from an ``.ovr`` older than the file."""
    try:
        return ovr.stat().st_mtime_ns < os.stat(path).st_mtime_ns
    except OSError:
        return False


class RasterioOverviewBuilder:
    """Builds ``.ovr`` overviews next to GeoTIFFs (pipeline ``OverviewBuilder``)."""

    def __init__(self, resampling: str = "average", compress: str = "DEFLATE") -> None:
        self.resampling = Resampling[resampling]
        self.compress = compress

    def build_overviews(self, path: str) -> bool:
        """Build missing overviews for ``path``; True when some were built."""
        try:
            if not needs_overviews(path):
                return False
            ovr = Path(path + ".ovr")
            if ovr.exists():
                ovr.unlink()  # stale: its raster was replaced
            # TIFF_USE_OVR makes GDAL write <file>.ovr instead of touching the file itself
            with rasterio.Env(TIFF_USE_OVR=True, COMPRESS_OVERVIEW=self.compress):
                with rasterio.open(path, "r+") as ds:
                    factors = overview_factors(ds.width, ds.height)
                    ds.build_overviews(factors, self.resampling)
            return True
        except (RasterioError, OSError) as exc:
            raise RasterRejected(
                path,
                f"overviews could not be built ({exc}).",
                next_step="Check that the folder is writable, or set build_overviews = false.",
            ) from exc


__all__ = ["RasterioOverviewBuilder", "needs_overviews", "overview_factors"]
