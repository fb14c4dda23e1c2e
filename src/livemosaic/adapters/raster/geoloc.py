"""Curvilinear grids: rasters located by 2-D longitude/latitude arrays (GDAL geolocation arrays).

A NetCDF variable whose ``coordinates`` are 2-D ``lat``/``lon`` arrays (ocean and regional
model output on rotated or curvilinear grids) has no geotransform; GDAL describes it with a
``GEOLOCATION`` metadata domain instead (``X_DATASET``/``Y_DATASET``: the longitude and
latitude arrays, ``SRS``: their CRS, usually WGS 84). Such an item:

* has as footprint the outline of the grid (its edge cells' centres, in order) transformed
  into the dataset CRS, and as native extent the bounding box of every cell centre (widened
  by half a cell) in the arrays' CRS;
* is marked with the item attribute :data:`GEOLOCATION`, and read through the GDAL warper with
  the geolocation arrays (``rasterio.warp.reproject(src_geoloc_array=…)``): the whole variable
  is warped onto the request grid, nearest neighbour or bilinear alike.

Not supported, and refused with this reason: geolocation arrays subsampled relative to the
grid (``PIXEL_STEP``/``LINE_STEP`` other than 1), arrays of another shape than the variable,
and arrays without a single valid cell.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from threading import Lock
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import reproject

from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.crs import crs_from_key, crs_key, key_of, same_crs
from livemosaic.adapters.raster.dataset import open_dataset
from livemosaic.adapters.raster.georef import Geo
from livemosaic.adapters.raster.projector import orient_clockwise, ring_extent, transform_finite
from livemosaic.core.models import Extent, RasterItem
from livemosaic.core.ports import ReadRequest
from livemosaic.errors import RasterRejected

GEOLOCATION = "geolocation"  # item attribute: located by geolocation arrays
# The whole variable is warped for each request: curvilinear grids are limited to this many
# cells (2048 x 2048; larger ones are refused at ingest with a gdalwarp command).
MAX_GEOLOCATED_CELLS = 2048 * 2048
_SAMPLES = 64  # rows/columns sampled to estimate the cell size
_CACHE_BYTES = 256 * 1024 * 1024  # geolocation arrays kept in memory (per process)

Arrays = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], str]
_cache: OrderedDict[tuple[str, int], Arrays] = OrderedDict()
_lock = Lock()


def has_geolocation(ds: Any) -> bool:
    """True for a dataset without a geotransform that GDAL locates by geolocation arrays."""
    if ds.crs is not None or not ds.transform.is_identity:
        return False
    md = ds.tags(ns="GEOLOCATION")
    return bool(md.get("X_DATASET") and md.get("Y_DATASET"))


def read_arrays(ds: Any, path: str, confine: Confinement) -> Arrays:
    """(longitudes, latitudes, CRS key) of every cell centre of ``ds`` (RasterRejected if the
    arrays cannot be used)."""
    md = ds.tags(ns="GEOLOCATION")
    if ds.width * ds.height > MAX_GEOLOCATED_CELLS:
        raise RasterRejected(
            path,
            f"its curvilinear grid ({ds.width}x{ds.height} cells, located by 2-D longitude/"
            f"latitude arrays) is larger than the {MAX_GEOLOCATED_CELLS} cells served by "
            "warping on the fly.",
            next_step="Warp it to a regular grid first, e.g. `gdalwarp -geoloc -t_srs "
            "EPSG:4326 in.nc out.tif`, and add that file.",
        )
    steps = (md.get("PIXEL_STEP", "1"), md.get("LINE_STEP", "1"))
    offsets = (md.get("PIXEL_OFFSET", "0"), md.get("LINE_OFFSET", "0"))
    if any(float(s) != 1.0 for s in steps) or any(float(o) != 0.0 for o in offsets):
        raise RasterRejected(
            path,
            "its geolocation arrays are subsampled relative to the grid (curvilinear grid "
            "with PIXEL_STEP/LINE_STEP other than 1), which is not supported.",
            next_step="Warp it to a regular grid first, e.g. `gdalwarp -geoloc -t_srs "
            "EPSG:4326 in.nc out.tif`, and add that file.",
        )
    arrays = []
    for key in ("X", "Y"):
        uri = md[f"{key}_DATASET"]
        with open_dataset(uri, confine=confine, path=path) as src:
            arrays.append(src.read(int(md.get(f"{key}_BAND", "1"))).astype(np.float64))
    lon, lat = arrays
    if lon.shape != (ds.height, ds.width) or lat.shape != lon.shape:
        raise RasterRejected(
            path,
            f"its geolocation arrays ({lon.shape[1]}x{lon.shape[0]}) do not match the grid "
            f"({ds.width}x{ds.height}).",
            next_step="Warp it to a regular grid first, e.g. `gdalwarp -geoloc -t_srs "
            "EPSG:4326 in.nc out.tif`, and add that file.",
        )
    srs = md.get("SRS", "")
    crs = crs_key(CRS.from_user_input(srs)) if srs else "EPSG:4326"
    return lon, lat, crs


def geolocated_geo(path: str, dataset_crs: str | None, arrays: Arrays) -> Geo:
    """Footprint, extents and cell sizes of a curvilinear grid."""
    lon, lat, native = arrays
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise RasterRejected(
            path,
            "its geolocation (2-D longitude/latitude) arrays hold no valid coordinate.",
            next_step="Check the file's lat/lon variables.",
        )
    rows, cols = lon.shape
    cell_x = float(np.nanmax(lon) - np.nanmin(lon)) / max(cols - 1, 1)
    cell_y = float(np.nanmax(lat) - np.nanmin(lat)) / max(rows - 1, 1)
    native_extent = Extent(
        float(np.nanmin(lon[ok])) - cell_x / 2,
        float(np.nanmin(lat[ok])) - cell_y / 2,
        float(np.nanmax(lon[ok])) + cell_x / 2,
        float(np.nanmax(lat[ok])) + cell_y / 2,
    )
    edge = _edge_indexes(rows, cols)
    xs, ys = lon[edge], lat[edge]
    keep = np.isfinite(xs) & np.isfinite(ys)
    target = key_of(dataset_crs) if dataset_crs else native
    tx, ty = transform_finite(native, target, xs[keep], ys[keep])
    good = np.isfinite(tx) & np.isfinite(ty)
    footprint = orient_clockwise(
        [(float(a), float(b)) for a, b in zip(tx[good], ty[good], strict=True)]
    )
    if len(footprint) < 4:
        raise RasterRejected(
            path,
            "its extent cannot be expressed in the mosaic dataset's spatial reference.",
            next_step="Use a dataset whose spatial reference covers this raster's area.",
        )
    extent = ring_extent(footprint)
    low = _cell_size(lon, lat, native, target) or (extent.width / cols + extent.height / rows) / 2
    return Geo(native, native_extent, footprint, extent, cell_x, cell_y, low, low)


def _edge_indexes(rows: int, cols: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row and column indexes of the grid's outline, clockwise from the first cell."""
    top = [(0, c) for c in range(cols)]
    right = [(r, cols - 1) for r in range(1, rows)]
    bottom = [(rows - 1, c) for c in range(cols - 2, -1, -1)]
    left = [(r, 0) for r in range(rows - 2, 0, -1)]
    cells = top + right + bottom + left
    return (
        np.array([r for r, _ in cells], dtype=np.intp),
        np.array([c for _, c in cells], dtype=np.intp),
    )


def _cell_size(
    lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], src: str, dst: str
) -> float | None:
    """Median distance between neighbouring cell centres, in the dataset's units."""
    step = max(1, max(lon.shape) // _SAMPLES)
    sub_lon, sub_lat = lon[::step, ::step], lat[::step, ::step]
    tx, ty = transform_finite(src, dst, sub_lon.ravel(), sub_lat.ravel())
    x = tx.reshape(sub_lon.shape)
    y = ty.reshape(sub_lon.shape)
    dists = [np.hypot(np.diff(x, axis=1), np.diff(y, axis=1)).ravel(),
             np.hypot(np.diff(x, axis=0), np.diff(y, axis=0)).ravel()]  # fmt: skip
    values = np.concatenate(dists) / step
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.median(values)) if values.size else None


def is_geolocated(item: RasterItem) -> bool:
    """True for an item read through geolocation arrays."""
    return bool(item.attributes.get(GEOLOCATION))


def _arrays_for(ds: Any, item: RasterItem, confine: Confinement) -> Arrays:
    """The warper's geolocation arrays of an item (cell corners), cached per file version."""
    key = (item.uri, item.file_mtime_ns)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    lon, lat, native = read_arrays(ds, item.path, confine)
    if ds.tags(ns="GEOLOCATION").get("GEOREFERENCING_CONVENTION", "") == "PIXEL_CENTER":
        lon, lat = _corners(lon), _corners(lat)  # the warper takes top-left corners
    arrays = (lon, lat, native)
    with _lock:
        _cache[key] = arrays
        while len(_cache) > 1 and sum(a[0].nbytes * 2 for a in _cache.values()) > _CACHE_BYTES:
            _cache.popitem(last=False)
    return arrays


def _corners(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Top-left corner coordinates of cells from their centres (half a cell back along rows
    and columns, with the local gradient)."""
    if min(a.shape) < 2:
        return a
    d_row, d_col = np.gradient(a)
    out: npt.NDArray[np.float64] = a - 0.5 * d_row - 0.5 * d_col
    return out


def geolocated_pixels(
    ds: Any,
    item: RasterItem,
    sel: tuple[int, ...],
    request: ReadRequest,
    confine: Confinement,
    resampling: Any,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """The selected bands warped onto the request grid through the geolocation arrays:
    (data, valid). Invalid source cells (nodata, NaN) stay invalid."""
    lon, lat, native = _arrays_for(ds, item, confine)
    indexes = [item.bands[i] for i in sel]
    source = ds.read(indexes).astype(np.float64)
    for i, band in enumerate(indexes):
        nodata = ds.nodatavals[band - 1]
        if nodata is not None and not math.isnan(nodata):
            source[i][source[i] == nodata] = np.nan
    ext = request.extent
    dst_transform = Affine(
        ext.width / request.width, 0.0, ext.xmin, 0.0, -ext.height / request.height, ext.ymax
    )
    out = np.full((len(indexes), request.height, request.width), np.nan, dtype=np.float64)
    reproject(
        source,
        out,
        src_crs=crs_from_key(native),
        src_geoloc_array=np.stack([lon, lat]),
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs=crs_from_key(native if same_crs(request.crs, native) else request.crs),
        dst_nodata=np.nan,
        resampling=resampling,
    )
    valid: npt.NDArray[np.bool_] = np.asarray(np.isfinite(out).all(axis=0))
    dtype = np.dtype(ds.dtypes[indexes[0] - 1])
    if np.issubdtype(dtype, np.floating):
        return out.astype(dtype), valid
    filler = item.nodata if item.nodata is not None else 0
    return np.where(np.isfinite(out), np.rint(out), filler).astype(dtype), valid
