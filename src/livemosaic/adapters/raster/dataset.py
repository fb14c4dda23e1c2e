"""Opening raster files with rasterio and turning GDAL failures into ``RasterRejected``.

Every rasterio/GDAL exception raised while opening or reading a file leaves this package as a
:class:`livemosaic.errors.RasterRejected` whose reason says what is wrong in plain words and
whose next step says what to do.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from rasterio._path import _parse_path
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader

from livemosaic.adapters.raster.confine import SIDECAR_SUFFIXES, Confinement
from livemosaic.adapters.raster.crs import quiet_env
from livemosaic.errors import RasterRejected

HDF4_MAGIC = b"\x0e\x03\x13\x01"
HDF4_NEXT_STEP = (
    "The GDAL bundled with this installation (rasterio wheel) has no HDF4 driver. Convert the "
    "file with a GDAL built with HDF4 (for example Debian's gdal-bin), e.g. "
    '`gdal_translate HDF4_EOS:EOS_GRID:"file.hdf":<grid>:<field> out.tif` for each field, '
    "or to NetCDF with `gdalmdimtranslate`, and add the converted files instead."
)
DAMAGED_NEXT_STEP = (
    "Replace it with a complete copy; if the file is still being written, add it again once "
    "it is complete."
)
FORMAT_NEXT_STEP = (
    "Add files in a raster format GDAL reads (GeoTIFF/COG, NetCDF, GRIB, JPEG 2000, HDF5, "
    "SRTM HGT, ESRI ASCII grid, …)."
)


def is_sidecar(path: str) -> bool:
    """True for files that belong to another raster (masks, overviews, headers, world files)."""
    lower = path.lower()
    return any(lower.endswith(suffix) for suffix in SIDECAR_SUFFIXES)


def reject_sidecar(path: str) -> RasterRejected:
    """The rejection for a sidecar file."""
    return RasterRejected(
        path,
        "sidecar file: it belongs to the raster with the same base name and is not a raster "
        "of its own.",
        next_step="Add the main raster file; keep this file next to it.",
    )


def open_dataset(uri: str, *, confine: Confinement, path: str | None = None, **options: Any) -> Any:
    """Open ``uri`` read-only, and only when it reads nothing outside ``confine``.

    The one place rasters are opened: :meth:`Confinement.check` runs first (the file, its
    sidecars, VRT sources, archive members, network locations), GDAL may only use the
    allowed drivers, and GDAL's own list of the dataset's files is checked after opening.
    Warnings about missing georeferencing are silenced. Raises RasterRejected (for
    ``path``, default ``uri``) with a clear reason.
    """
    shown = path or uri
    name = confine.check(uri, shown)
    try:
        with quiet_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            # rasterio.open takes one driver name; the reader takes GDAL's allowed list
            ds = DatasetReader(_parse_path(name), driver=confine.drivers(name), **options)
    except (RasterioError, OSError, ValueError) as exc:
        if confine.is_remote(name):  # GDAL's network errors are not echoed
            raise RasterRejected(
                shown,
                "the network location cannot be opened.",
                next_step="Check that the object exists and is readable by the server.",
            ) from exc
        raise open_error(shown, exc) from exc
    try:
        with quiet_env():
            files = list(ds.files)
        confine.check_files(files, shown)
    except BaseException:
        ds.close()
        raise
    return ds


def open_error(path: str, exc: BaseException) -> RasterRejected:
    """Explain why GDAL could not open ``path``."""
    text = str(exc).strip()
    head = _head(path)
    if head is None:
        if not os.path.exists(path):
            return RasterRejected(
                path, "file not found.", next_step="Check the path and that the file still exists."
            )
        return RasterRejected(path, f"file cannot be read ({text}).", next_step=DAMAGED_NEXT_STEP)
    if head == b"":
        return RasterRejected(path, "empty file (0 bytes).", next_step=DAMAGED_NEXT_STEP)
    if head.startswith(HDF4_MAGIC) or path.lower().endswith((".hdf", ".hdf4", ".h4")):
        return RasterRejected(
            path, "HDF4 file: this installation cannot read HDF4.", next_step=HDF4_NEXT_STEP
        )
    if "not recognized as being in a supported file format" in text or "not recognized as" in text:
        return RasterRejected(
            path, "not a raster: GDAL does not recognise its format.", next_step=FORMAT_NEXT_STEP
        )
    return RasterRejected(
        path,
        f"the file cannot be opened, it is probably truncated or damaged ({_short(text)}).",
        next_step=DAMAGED_NEXT_STEP,
    )


def read_error(path: str, exc: BaseException, what: str = "pixels") -> RasterRejected:
    """Explain why reading ``what`` from ``path`` failed."""
    return RasterRejected(
        path,
        f"the {what} cannot be read, the file is truncated or damaged ({_root_message(exc)}).",
        next_step=DAMAGED_NEXT_STEP,
    )


def _root_message(exc: BaseException) -> str:
    """The most specific message in an exception chain (GDAL's own words)."""
    messages: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text and "See previous exception" not in text:
            messages.append(text)
        current = current.__cause__ or current.__context__
    return _short(messages[-1] if messages else str(exc))


def _head(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)
    except OSError:
        return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
