"""Reading an item's pixels onto a target grid (warped, overview-aware, thread-safe).

* A request in the item's own CRS, at its native cell size and aligned with its pixel grid
  is a plain windowed read: exactly the pixels ``rasterio.open(uri).read()`` returns.
* Anything else goes through a GDAL warped VRT built on the request grid. When the request
  is coarser than the file, the source is the overview whose cell size is the largest one not
  coarser than the request (what GDAL itself picks), opened as its own dataset.
* Validity: the warper's destination alpha (outside the source, or no valid source pixel
  under the kernel) combined with the item's own rule: alpha band, per-dataset mask, nodata
  value, NaN. A pixel is valid when every band is valid.
* Packed data (scale/offset) is returned unpacked as float32 (float64 for float64 data);
  invalid pixels then hold NaN.

rasterio datasets are not thread-safe, so each thread keeps its own LRU of open handles keyed
by (uri, file mtime, overview level), one per confinement. The threads share one budget of
open handles per process (:data:`HANDLE_BUDGET`): each cache keeps at most its share,
``HANDLE_BUDGET`` divided by the caches alive (never fewer than :data:`MIN_HANDLES`), and gives
back its oldest handles when it opens one past its share. Every open goes
through :func:`~livemosaic.adapters.raster.dataset.open_dataset`, which checks again where the
file and everything it refers to resolve (a file replaced by a symlink to the outside after
ingest is refused); the check is paid once per open and cached with the open handle.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.crs import crs_from_key, quiet_env, same_crs
from livemosaic.adapters.raster.dataset import open_dataset, read_error
from livemosaic.adapters.raster.geoloc import geolocated_pixels, is_geolocated
from livemosaic.adapters.raster.projector import ring_extent, transform_ring
from livemosaic.adapters.raster.stats import band_valid
from livemosaic.core.models import Extent, RasterItem
from livemosaic.core.ports import PixelBlock, ReadRequest
from livemosaic.errors import InvalidParameter, LiveMosaicError


def _handle_budget() -> int:
    """Open datasets kept by the whole process: enough for every reader thread to hold a
    mosaic of many tiles (each open at full resolution and at one overview level), bounded by
    the process's file-descriptor limit (a quarter of it, so sockets and catalog files keep
    the rest)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        return 256
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(64, min(1024, soft // 4))


HANDLE_BUDGET = _handle_budget()
MIN_HANDLES = 32  # a thread's share never drops below this (a mosaic of 16 tiles, 2 levels)
CACHE_SIZE = 256  # at most per thread, whatever the budget
_caches: weakref.WeakSet[DatasetCache] = weakref.WeakSet()
_RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "mode": Resampling.mode,
}
_local = threading.local()


class DatasetCache:
    """An LRU of open datasets for one thread, opened under one confinement."""

    def __init__(self, confine: Confinement, size: int = CACHE_SIZE) -> None:
        self.confine = confine
        self.size = size
        self._items: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
        _caches.add(self)

    def share(self) -> int:
        """How many handles this cache may keep now: its size, lowered to its share of the
        process's budget."""
        return min(self.size, max(MIN_HANDLES, HANDLE_BUDGET // max(len(_caches), 1)))

    def get(self, item: RasterItem, level: int = -1) -> Any:
        """The open dataset of an item (level >= 0: that overview as its own dataset)."""
        key = (item.uri, item.file_mtime_ns, level)
        ds = self._items.get(key)
        if ds is not None:
            self._items.move_to_end(key)
            return ds
        options = {"overview_level": level} if level >= 0 else {}
        ds = open_dataset(item.uri, confine=self.confine, path=item.path, **options)
        self._items[key] = ds
        share = self.share()
        while len(self._items) > share:
            _, old = self._items.popitem(last=False)
            old.close()
        return ds

    def discard(self, item: RasterItem) -> None:
        """Close and forget every handle of an item's uri (after a failure)."""
        for key in [k for k in self._items if k[0] == item.uri]:
            self._items.pop(key).close()

    def clear(self) -> None:
        """Close every handle."""
        while self._items:
            _, ds = self._items.popitem()
            ds.close()

    def keys(self) -> list[tuple[str, int, int]]:
        """(uri, mtime_ns, overview level) of the open handles, least recently used first."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


def thread_cache(confine: Confinement) -> DatasetCache:
    """This thread's dataset cache for ``confine``."""
    caches: dict[Confinement, DatasetCache] | None = getattr(_local, "caches", None)
    if caches is None:
        caches = {}
        _local.caches = caches
    cache = caches.get(confine)
    if cache is None:
        cache = caches[confine] = DatasetCache(confine)
    return cache


def read_item(item: RasterItem, request: ReadRequest, confine: Confinement) -> PixelBlock | None:
    """Item pixels on the request grid; None when the request does not overlap the item."""
    if request.width <= 0 or request.height <= 0 or not request.extent.is_valid():
        raise InvalidParameter("size", "the target grid must have a positive size and extent.")
    sel = _band_selection(item, request.bands)
    if request.lon_shift and not crs_from_key(item.native_crs).is_geographic:
        return None  # only a grid in degrees has another turn of the Earth
    footprint = _item_extent_in(item, request.crs, request.lon_shift)
    if footprint is None or footprint.intersection(request.extent) is None:
        return None
    cache = thread_cache(confine)
    try:
        with quiet_env():
            base = cache.get(item)
            level = _overview_level(base, item, footprint, request)
            src = base if level < 0 else cache.get(item, level)
            if is_geolocated(item):  # curvilinear grid: warped through its geolocation arrays
                resampling = _RESAMPLING[request.resampling]
                data, valid = geolocated_pixels(src, item, sel, request, confine, resampling)
                return _finish(item, sel, data, valid)
            block = None
            if not request.lon_shift:
                block = _aligned_read(src, item, sel, request)
                if block is None:
                    block = _resampled_read(src, item, sel, request)
            if block is None:
                block = _warped_read(src, item, sel, request)
    except LiveMosaicError:
        cache.discard(item)
        raise
    except Exception as exc:
        cache.discard(item)
        raise read_error(item.path, exc) from exc
    return block


def _band_selection(item: RasterItem, bands: tuple[int, ...] | None) -> tuple[int, ...]:
    if bands is None:
        return tuple(range(len(item.bands)))
    for b in bands:
        if not 0 <= b < len(item.bands):
            raise InvalidParameter(
                "bandIds",
                f"band index {b} is out of range for an item with {len(item.bands)} bands.",
            )
    return tuple(bands)


@lru_cache(maxsize=4096)
def _extent_in(native_crs: str, native: Extent, dst: str) -> Extent | None:
    """An item's native extent in another CRS (cached: PROJ setup can be slow)."""
    ring = transform_ring(native, native_crs, dst)
    return ring_extent(ring) if ring else None


def _item_extent_in(item: RasterItem, crs: str, lon_shift: float = 0.0) -> Extent | None:
    """The item's extent in the request CRS, its longitudes moved by ``lon_shift`` degrees
    (None when it cannot be expressed there)."""
    native = item.native_extent
    if lon_shift:
        native = Extent(native.xmin + lon_shift, native.ymin, native.xmax + lon_shift, native.ymax)
    if same_crs(crs, item.native_crs):
        return native
    return _extent_in(item.native_crs, native, crs)


def _overview_level(ds: Any, item: RasterItem, footprint: Extent, request: ReadRequest) -> int:
    """Index of the overview to read from (-1 = full resolution).

    GDAL's rule: the coarsest overview whose cell size is not coarser than the request's.
    """
    factors = ds.overviews(item.bands[0])
    if not factors or footprint.width <= 0 or footprint.height <= 0:
        return -1
    res_x = request.extent.width / request.width
    res_y = request.extent.height / request.height
    ratio = min(res_x / (footprint.width / item.width), res_y / (footprint.height / item.height))
    level = -1
    for i, f in enumerate(factors):
        if f <= ratio * (1 + 1e-9):
            level = i
    return level


def _alpha_index(ds: Any) -> int | None:
    if ds.count < 2:
        return None
    for i, ci in enumerate(ds.colorinterp):
        if ci == ColorInterp.alpha:
            return i + 1
    return None


def _alpha_weighs(ds: Any, item: RasterItem) -> bool:
    """True when a resampled read of ``ds`` is left to GDAL: its data bands have a
    per-dataset mask, which GDAL leaves out of the kernels (it takes an alpha band for one only
    with one or three 8- or 16-bit unsigned bands before it; other integer overview tiles have
    an internal mask), or the data is floating-point (kept as it was: an overview tile holds
    NaN under its transparent pixels, which stays out of the average or makes the pixel
    NoData)."""
    band = item.bands[0]
    if np.issubdtype(np.dtype(ds.dtypes[band - 1]), np.floating):
        return True
    return MaskFlags.per_dataset in ds.mask_flag_enums[band - 1]


def _aligned_read(
    ds: Any, item: RasterItem, sel: tuple[int, ...], request: ReadRequest
) -> PixelBlock | None:
    """A plain windowed read when the request matches the file's grid; else None."""
    t = ds.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        return None
    if not same_crs(request.crs, item.native_crs):
        return None
    ext = request.extent
    res_x = ext.width / request.width
    res_y = ext.height / request.height
    if not (math.isclose(res_x, t.a, rel_tol=1e-9) and math.isclose(res_y, -t.e, rel_tol=1e-9)):
        return None
    col = (ext.xmin - t.c) / t.a
    row = (ext.ymax - t.f) / t.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    col0, row0 = round(col), round(row)
    c0, r0 = max(col0, 0), max(row0, 0)
    c1 = min(col0 + request.width, ds.width)
    r1 = min(row0 + request.height, ds.height)
    if c1 <= c0 or r1 <= r0:
        return _empty(item, sel, request)
    window = Window(c0, r0, c1 - c0, r1 - r0)
    indexes = [item.bands[i] for i in sel]
    data = ds.read(indexes, window=window)
    valid = np.ones(data.shape[1:], dtype=bool)
    alpha = _alpha_index(ds)
    if alpha is not None:
        valid &= ds.read(alpha, window=window) > 0
    elif MaskFlags.per_dataset in ds.mask_flag_enums[indexes[0] - 1]:
        valid &= ds.read_masks(indexes[0], window=window) > 0
    out = _finish(item, sel, data, valid)
    if (c0, r0, c1, r1) == (col0, row0, col0 + request.width, row0 + request.height):
        return out
    full = _empty(item, sel, request, dtype=out.data.dtype)
    ys, xs = slice(r0 - row0, r1 - row0), slice(c0 - col0, c1 - col0)
    full.data[:, ys, xs] = out.data
    full.valid[ys, xs] = out.valid
    return full


def _resampled_read(
    ds: Any, item: RasterItem, sel: tuple[int, ...], request: ReadRequest
) -> PixelBlock | None:
    """A resampled windowed read when the request is in the file's CRS and both grids are
    north-up; else None.

    GDAL resamples the source window straight into the output window (``RasterIO`` with
    ``out_shape``), which costs a fraction of a warp. Nearest takes any source (a nodata
    value, NaN or a mask is sampled like the data); the other resamplings only sources whose
    validity comes from an alpha band or that have none (a nodata value or NaN would be
    blended into the kernel), a pixel being valid when its resampled alpha is at least half
    opaque. GDAL leaves the transparent pixels out of the kernel only when it takes the alpha
    band for the bands' mask (see :func:`_alpha_weighs`); other integer data with an alpha
    band goes through the warper, which weighs every source pixel by its alpha.
    """
    nearest = request.resampling == "nearest"
    if item.mask_kind not in ("none", "alpha") and not nearest:
        return None
    if item.mask_kind == "alpha" and not nearest and not _alpha_weighs(ds, item):
        return None
    if item.scale is not None or item.offset is not None:
        return None
    t = ds.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0 or ds.crs is None:
        return None
    if not same_crs(request.crs, item.native_crs):
        return None
    ext = request.extent
    rx, ry = ext.width / request.width, ext.height / request.height
    sx, sy = rx / t.a, ry / -t.e  # source pixels per output pixel
    col = (ext.xmin - t.c) / t.a
    row = (ext.ymax - t.f) / t.e
    # output pixels whose centres fall inside the source
    oc0 = max(0, math.ceil((0.0 - col) / sx - 0.5))
    oc1 = min(request.width, math.floor((ds.width - col) / sx - 0.5) + 1)
    or0 = max(0, math.ceil((0.0 - row) / sy - 0.5))
    or1 = min(request.height, math.floor((ds.height - row) / sy - 0.5) + 1)
    if oc1 <= oc0 or or1 <= or0:
        return _empty(item, sel, request)
    c0 = max(0.0, col + oc0 * sx)
    r0 = max(0.0, row + or0 * sy)
    c1 = min(float(ds.width), col + oc1 * sx)
    r1 = min(float(ds.height), row + or1 * sy)
    if c1 - c0 <= 0 or r1 - r0 <= 0:
        return _empty(item, sel, request)
    window = Window(c0, r0, c1 - c0, r1 - r0)
    shape = (or1 - or0, oc1 - oc0)
    method = _RESAMPLING[request.resampling]
    indexes = [item.bands[i] for i in sel]
    data = ds.read(indexes, window=window, out_shape=(len(indexes), *shape), resampling=method)
    alpha = _alpha_index(ds)
    valid = np.ones(shape, dtype=bool)
    if alpha is not None:
        a = ds.read(alpha, window=window, out_shape=shape, resampling=method)
        top = 255 if not np.issubdtype(a.dtype, np.integer) else min(255, np.iinfo(a.dtype).max)
        valid = a > (0 if nearest else top / 2)
    elif MaskFlags.per_dataset in ds.mask_flag_enums[indexes[0] - 1]:
        mask = ds.read_masks(indexes[0], window=window, out_shape=shape, resampling=method)
        valid = mask > 0
    out = _finish(item, sel, data, valid)
    if shape == (request.height, request.width):
        return out
    full = _empty(item, sel, request, dtype=out.data.dtype)
    full.data[:, or0:or1, oc0:oc1] = out.data
    full.valid[or0:or1, oc0:oc1] = out.valid
    return full


def _warped_read(
    ds: Any, item: RasterItem, sel: tuple[int, ...], request: ReadRequest
) -> PixelBlock:
    ext = request.extent
    dst_transform = Affine(
        ext.width / request.width, 0.0, ext.xmin, 0.0, -ext.height / request.height, ext.ymax
    )
    indexes = [item.bands[i] for i in sel]
    options: dict[str, Any] = {
        "crs": crs_from_key(request.crs),
        "transform": dst_transform,
        "width": request.width,
        "height": request.height,
        "resampling": _RESAMPLING[request.resampling],
    }
    if ds.crs is None:
        options["src_crs"] = crs_from_key(item.native_crs)
    if request.lon_shift:  # the same grid on another turn of the Earth
        options["src_transform"] = Affine.translation(request.lon_shift, 0.0) * ds.transform
    alpha = _alpha_index(ds)
    if alpha is not None:
        options["src_alpha"] = alpha  # the warped alpha stays at the same index
    else:
        options["add_alpha"] = True
        if item.nodata is not None:
            options["src_nodata"] = item.nodata
        elif np.issubdtype(np.dtype(ds.dtypes[indexes[0] - 1]), np.floating):
            options["src_nodata"] = math.nan
    with WarpedVRT(ds, **options) as vrt:
        data = vrt.read(indexes)
        valid = vrt.read(alpha if alpha is not None else vrt.count) > 0
    return _finish(item, sel, data, valid)


def _finish(
    item: RasterItem, sel: tuple[int, ...], data: npt.NDArray[Any], valid: npt.NDArray[np.bool_]
) -> PixelBlock:
    """Apply the nodata/NaN rule and unpack scaled data."""
    nodata = item.nodata if item.mask_kind in ("nodata", "nan", "none") else None
    for i in range(data.shape[0]):
        if nodata is not None or np.issubdtype(data.dtype, np.floating):
            valid &= band_valid(data[i], nodata)
    names = tuple(item.band_names[i] for i in sel) if item.band_names else ()
    if item.is_packed:
        out_type = np.dtype(np.float64 if data.dtype == np.float64 else np.float32)
        scales, offsets = item.unpack_factors(sel)  # each band its own factors
        scale = np.asarray(scales, dtype=out_type).reshape(-1, 1, 1)
        offset = np.asarray(offsets, dtype=out_type).reshape(-1, 1, 1)
        unpacked: npt.NDArray[np.floating[Any]] = data.astype(out_type) * scale + offset
        unpacked[:, ~valid] = np.nan
        return PixelBlock(data=unpacked, valid=valid, band_names=names, nodata=None)
    return PixelBlock(data=data, valid=valid, band_names=names, nodata=item.nodata)


def _empty(
    item: RasterItem,
    sel: tuple[int, ...],
    request: ReadRequest,
    dtype: npt.DTypeLike | None = None,
) -> PixelBlock:
    packed = item.scale is not None or item.offset is not None
    if dtype is None:
        dtype = np.float32 if packed else _PIXEL_DTYPES.get(item.pixel_type, np.float64)
    data = np.zeros((len(sel), request.height, request.width), dtype=dtype)
    if packed:
        data[...] = np.nan
    elif item.nodata is not None and _fits(item.nodata, np.dtype(dtype)):
        data[...] = item.nodata
    names = tuple(item.band_names[i] for i in sel) if item.band_names else ()
    valid = np.zeros((request.height, request.width), dtype=bool)
    return PixelBlock(
        data=data, valid=valid, band_names=names, nodata=None if packed else item.nodata
    )


def _fits(value: float, dtype: np.dtype[Any]) -> bool:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    return True


_PIXEL_DTYPES: dict[str, npt.DTypeLike] = {
    "U8": np.uint8,
    "S8": np.int8,
    "U16": np.uint16,
    "S16": np.int16,
    "U32": np.uint32,
    "S32": np.int32,
    "F32": np.float32,
    "F64": np.float64,
    "C64": np.complex64,
    "C128": np.complex128,
}
