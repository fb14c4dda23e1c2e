"""External overviews (``.ovr``) for GeoTIFFs that have none, so small scales read fast.

Only plain GeoTIFFs larger than one overview tile get overviews; COGs and other formats
(NetCDF, JPEG 2000, …) carry their own. The overviews go into ``<file>.ovr`` beside the file
(GDAL finds it there; the watcher ignores ``.ovr`` sidecars), and those of an external mask
into ``<file>.msk.ovr``. The raster is never opened for writing: it is opened read-only
(confined like every raster), described by a VRT in a private temporary folder, and GDAL
builds the VRT's external overviews there; the finished ``.ovr`` is then moved beside the
raster (under a ``.part`` name first, which the watcher ignores). A stale ``.ovr`` (older than
its file) is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import RasterioError

from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.crs import quiet_env
from livemosaic.adapters.raster.dataset import open_dataset
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


def needs_overviews(path: str, confine: Confinement) -> bool:
    """True for a GeoTIFF without internal or current external overviews."""
    ovr = Path(path + ".ovr")
    with open_dataset(path, confine=confine) as ds:
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

    def __init__(
        self, confine: Confinement, resampling: str = "average", compress: str = "DEFLATE"
    ) -> None:
        self.confine = confine
        self.resampling = Resampling[resampling]
        self.compress = compress

    def build_overviews(self, path: str) -> bool:
        """Build missing overviews for ``path``; True when some were built."""
        try:
            if not needs_overviews(path, self.confine):
                return False
            for stale in (Path(path + ".ovr"), Path(path + ".msk.ovr")):
                if stale.exists():
                    stale.unlink()  # stale: its raster was replaced
            with open_dataset(path, confine=self.confine) as ds:
                factors = overview_factors(ds.width, ds.height)
                self._write(ds, path + ".ovr", factors)
            mask = path + ".msk"
            if os.path.isfile(mask):
                with open_dataset(mask, confine=self.confine, path=path) as ds:
                    self._write(ds, mask + ".ovr", factors)
            return True
        except (RasterioError, OSError) as exc:
            raise RasterRejected(
                path,
                f"overviews could not be built ({exc}).",
                next_step="Check that the folder is writable, or set build_overviews = false.",
            ) from exc

    def _write(self, ds: object, target: str, factors: list[int]) -> None:
        """Overviews of the read-only dataset ``ds`` into the file ``target``."""
        with tempfile.TemporaryDirectory(prefix="livemosaic-ovr-") as tmp:
            vrt = os.path.join(tmp, "source.vrt")
            with quiet_env():
                rasterio.shutil.copy(ds, vrt, driver="VRT")
            # the VRT (our own file) is opened for update so GDAL writes <vrt>.ovr; its
            # sources, the raster among them, are opened read-only
            with rasterio.Env(TIFF_USE_OVR=True, COMPRESS_OVERVIEW=self.compress):
                with rasterio.open(vrt, "r+") as described:
                    described.build_overviews(factors, self.resampling)
            part = target + ".part"
            shutil.move(vrt + ".ovr", part)
            os.replace(part, target)


__all__ = ["RasterioOverviewBuilder", "needs_overviews", "overview_factors"]
