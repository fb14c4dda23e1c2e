"""Inspect a raster file into catalog items (metadata, validation, statistics, time).

Single-image files (GeoTIFF/COG, JPEG 2000, SRTM HGT, RRASTER, ESRI ASCII grid, …) give one
item holding every band except an alpha band. Multidimensional files (NetCDF, GRIB) give one
item per slice (see :mod:`.multidim`).

Validity (``mask_kind``), in order: an alpha band (``alpha``; the item's bands exclude it), a
per-dataset mask, internal or an external ``.msk`` (``mask``), a nodata value (``nodata``),
NaN in float data without nodata (``nan``), else ``none``.

Time of a single-image item (and of the slices of a multidimensional file without a time
dimension): the dataset's time field (a metadata item such as a NetCDF global attribute
``time_coverage_start`` or a TIFF tag, read with its format), else the configured file-name
pattern, else the TIFF ``TIFFTAG_DATETIME`` tag, else a date found in the file name by the
default patterns. ``attributes["time_source"]`` says which gave it.

A file with a geotransform but no CRS is taken to be in the dataset's CRS;
``attributes["assumed_crs"]`` says so.
"""

from __future__ import annotations

import math
import os
from typing import Any

from rasterio.enums import ColorInterp, MaskFlags

from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.dataset import is_sidecar, open_dataset, reject_sidecar
from livemosaic.adapters.raster.georef import band_names, compute_geo, pixel_type
from livemosaic.adapters.raster.multidim import FileInfo, inspect_multidim, is_multidim
from livemosaic.adapters.raster.stats import ScanPlan, scan
from livemosaic.adapters.raster.thematic import thematic_attributes
from livemosaic.adapters.raster.timeparse import (
    time_from_name,
    time_from_text,
    time_from_tiff_tag,
)
from livemosaic.core.models import (
    ASSUMED_CRS,
    BAND_OFFSETS,
    BAND_SCALES,
    BandStats,
    MaskKind,
    RasterItem,
)
from livemosaic.core.ports import InspectOptions
from livemosaic.errors import RasterRefused, RasterRejected

_VSI_PREFIXES = {".zip": "/vsizip/", ".gz": "/vsigzip/", ".tar": "/vsitar/", ".tgz": "/vsitar/"}


def open_file(path: str, confine: Confinement) -> tuple[Any, str]:
    """Open a file (directly, or through /vsizip/ & co. for archives): (dataset, uri)."""
    try:
        return open_dataset(path, confine=confine), path
    except RasterRejected as first:
        ext = os.path.splitext(path)[1].lower()
        prefix = _VSI_PREFIXES.get(ext)
        if prefix is None:
            raise
        uri = prefix + path
        try:
            return open_dataset(uri, confine=confine, path=path), uri
        except RasterRefused:
            raise
        except RasterRejected:
            raise first from None


def file_stat(path: str) -> os.stat_result:
    """``os.stat`` of a file, or RasterRejected when it is missing or not a file."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise RasterRejected(
            path, f"file not found ({exc.strerror}).", next_step="Check the path."
        ) from exc
    if not os.path.isfile(path):
        raise RasterRejected(path, "not a regular file.", next_step="Give the path of a file.")
    return st


def _size_and_mtime(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def inspect_file(path: str, options: InspectOptions, confine: Confinement) -> list[RasterItem]:
    """Every item of one file; RasterRejected with a clear reason when it is unusable."""
    remote = confine.is_remote(path)
    if not remote:
        path = os.path.abspath(path)
    if is_sidecar(path):
        raise reject_sidecar(path)
    # an object's size and time come from its store's listing (the ingestor records them)
    size, mtime_ns = (0, 0) if remote else _size_and_mtime(file_stat(path))
    ds, uri = open_file(path, confine)
    with ds:
        file_time, time_source = _file_time(ds, path, options)
        info = FileInfo(path, uri, size, mtime_ns, file_time, confine)
        if is_multidim(ds):
            return inspect_multidim(ds, info, options)
        return [_single_item(ds, info, options, time_source)]


def _file_time(ds: Any, path: str, options: InspectOptions) -> tuple[int | None, str | None]:
    if options.time_field:
        value = time_from_text(metadata_value(ds, options.time_field), options.time_format)
        if value is not None:
            return value, options.time_field
    if options.time_pattern:
        value = time_from_name(path, options.time_pattern)
        if value is not None:
            return value, "time_pattern"
    value = time_from_tiff_tag(ds.tags().get("TIFFTAG_DATETIME"))
    if value is not None:
        return value, "TIFFTAG_DATETIME"
    value = time_from_name(path, None)
    return (value, "file name") if value is not None else (None, None)


def metadata_value(ds: Any, field: str) -> str | None:
    """The value of metadata item ``[DOMAIN:]NAME`` of a dataset (None when absent).

    Looked up in the dataset's metadata of that domain (default domain without one), then as
    a NetCDF global attribute (``NC_GLOBAL#NAME``), then in the first band's metadata; names
    match case-insensitively.
    """
    domain, _, name = field.rpartition(":")
    name = name.strip()
    sources = [ds.tags(ns=domain) if domain else ds.tags()]
    if ds.count:
        sources.append(ds.tags(1, ns=domain) if domain else ds.tags(1))
    wanted = (name.casefold(), f"nc_global#{name}".casefold())
    for key in wanted:
        for tags in sources:
            for k, v in tags.items():
                if k.casefold() == key:
                    return str(v)
    return None


def _single_item(
    ds: Any, info: FileInfo, options: InspectOptions, time_source: str | None
) -> RasterItem:
    path = info.path
    if ds.count == 0:
        raise RasterRejected(
            path, "the file holds no raster bands.", next_step="Add a file with raster data."
        )
    geo = compute_geo(ds, path, options.dataset_crs)
    alpha = next(
        (i + 1 for i, ci in enumerate(ds.colorinterp) if ci == ColorInterp.alpha and ds.count > 1),
        None,
    )
    bands = tuple(b for b in range(1, ds.count + 1) if b != alpha)
    flags = ds.mask_flag_enums[bands[0] - 1]
    per_dataset = alpha is None and MaskFlags.per_dataset in flags
    nodata = tuple(ds.nodatavals[b - 1] for b in bands)
    scales = tuple(float(ds.scales[b - 1]) for b in bands)
    offsets = tuple(float(ds.offsets[b - 1]) for b in bands)
    packed = any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets)
    plan = ScanPlan(
        indexes=bands,
        nodata=nodata,
        scales=scales if packed else (),
        offsets=offsets if packed else (),
        alpha=alpha,
        dataset_mask=per_dataset,
    )
    result = scan(
        ds,
        plan,
        path=path,
        validate=options.validate_pixels,
        stats=options.compute_stats,
        confine=info.confine,
    )
    dtype = ds.dtypes[bands[0] - 1]
    is_float = dtype.startswith("float") or packed
    mask: MaskKind
    if alpha is not None:
        mask = "alpha"
    elif per_dataset:
        mask = "mask"
    elif nodata[0] is not None:
        mask = "nodata"
    elif is_float and (result.nan_seen or not (options.validate_pixels or options.compute_stats)):
        mask = "nan"
    else:
        mask = "none"
    stats = result.stats
    nbits = ds.tags(bands[0], ns="IMAGE_STRUCTURE").get("NBITS")
    attrs: dict[str, Any] = {"driver": ds.driver}
    if time_source:
        attrs["time_source"] = time_source
    if alpha is not None:
        attrs["alpha_band"] = alpha
    if geo.crs_assumed:
        attrs[ASSUMED_CRS] = geo.native_crs  # the file has none: the dataset's was taken
    if ds.units and ds.units[bands[0] - 1]:
        attrs["unit"] = ds.units[bands[0] - 1]
    if packed and (len(set(scales)) > 1 or len(set(offsets)) > 1):
        attrs[BAND_SCALES] = list(scales)
        attrs[BAND_OFFSETS] = list(offsets)
    if len(bands) == 1:  # palette, attribute table and classes of a thematic raster
        attrs.update(thematic_attributes(ds, path, bands[0]))
    return RasterItem(
        path=path,
        uri=info.uri,
        name=_item_name(path),
        bands=bands,
        footprint=geo.footprint,
        extent=geo.extent,
        native_crs=geo.native_crs,
        native_extent=geo.native_extent,
        width=int(ds.width),
        height=int(ds.height),
        cell_size_x=geo.cell_size_x,
        cell_size_y=geo.cell_size_y,
        low_ps=geo.low_ps,
        high_ps=geo.high_ps,
        pixel_type=pixel_type(dtype, packed=packed, nbits=int(nbits) if nbits else None),
        band_names=band_names(ds, bands),
        nodata=None if nodata[0] is None else float(nodata[0]),
        mask_kind=mask,
        stats=_stats_tuple(stats),
        file_size=info.size,
        file_mtime_ns=info.mtime_ns,
        time=info.fallback_time,
        attributes=attrs,
        scale=scales[0] if packed else None,
        offset=offsets[0] if packed else None,
        overview_count=len(ds.overviews(bands[0])),
    )


def _stats_tuple(stats: list[BandStats | None]) -> tuple[BandStats, ...]:
    """Per-band statistics; () when nothing was computed or no pixel is valid.

    A band without any valid pixel (while others have some) gets NaN statistics, count 0.
    """
    if not stats or all(s is None for s in stats):
        return ()
    nan = math.nan
    return tuple(s if s is not None else BandStats(nan, nan, nan, nan, 0) for s in stats)


def _item_name(path: str) -> str:
    name = os.path.basename(path)
    lower = name.lower()
    for suffix in (".hgt.zip", ".tar.gz"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    stem, _ = os.path.splitext(name)
    return stem or name


def file_crs(path: str, confine: Confinement) -> str:
    """The CRS key of a file's first item (no pixel reading)."""
    options = InspectOptions(None, validate_pixels=False, compute_stats=False)
    items = inspect_file(path, options, confine)
    return items[0].native_crs
