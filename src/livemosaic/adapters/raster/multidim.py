"""Multidimensional files: one item per variable x time x level slice (NetCDF, GRIB).

NetCDF (and other GDAL containers with subdatasets): every data variable on a georeferenced
grid is a subdataset whose bands are its slices. Helper variables are skipped: coordinates
(``lat``, ``lon``, anything named in another variable's ``coordinates`` attribute), bounds
(``time_bnds``, anything named by a ``bounds``/``climatology`` attribute), grid mappings,
land/sea masks (``mask``, ``mask_*``, standard names ``land_binary_mask``/``sea_binary_mask``)
and variables without an x/y grid. A variable on x/y coordinates without a grid mapping (no
CRS) takes the dataset's CRS, when the dataset has one (``attributes["assumed_crs"]``).
Curvilinear grids (2-D latitude/longitude arrays, GDAL geolocation arrays) are kept too: their
footprint comes from the arrays (see :mod:`.geoloc`). Static 2-D fields (bathymetry ``h``) are
kept as items without time. Each band gives one item: ``uri`` = ``netcdf:"<file>":<var>``,
``bands = (band,)``, ``variable`` = the variable name, ``time`` from the band's
``NETCDF_DIM_<time>`` value decoded with the CF units and calendar, ``end_time`` from CF time
bounds, ``dimensions["StdZ"]`` from the vertical dimension (depth, z, lev, level, height,
plev, s_rho, …, or ``axis=Z``/``positive``). Depths (``positive="down"``) become negative
StdZ values (elevation convention, as ArcGIS shows them); ``attributes["z_positive"]`` keeps
the file's convention. Any other extra dimension is kept under its own name.

GRIB files: see :mod:`.grib`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from livemosaic.adapters.raster.cf_time import CFTimeError, CFTimeUnits, parse_units
from livemosaic.adapters.raster.dataset import open_dataset
from livemosaic.adapters.raster.geoloc import (
    GEOLOCATION,
    geolocated_geo,
    has_geolocation,
    read_arrays,
)
from livemosaic.adapters.raster.georef import compute_geo
from livemosaic.adapters.raster.grib import grib_items
from livemosaic.adapters.raster.ncmeta import (
    TimeBounds,
    dim_roles,
    helper_names,
    is_helper,
    looks_lonlat,
    norm_unit,
    parse_list,
    subdataset_uri,
)
from livemosaic.adapters.raster.slices import FileInfo, scan_all, slice_item
from livemosaic.adapters.raster.timeparse import iso
from livemosaic.core.models import ASSUMED_CRS, RasterItem
from livemosaic.core.ports import InspectOptions
from livemosaic.errors import RasterRejected

__all__ = ["FileInfo", "inspect_multidim", "is_multidim"]


def is_multidim(ds: Any) -> bool:
    """True for files handled slice by slice (NetCDF, GRIB, containers of subdatasets)."""
    return ds.driver in ("netCDF", "GRIB") or (ds.count == 0 and bool(ds.subdatasets))


def inspect_multidim(ds: Any, info: FileInfo, options: InspectOptions) -> list[RasterItem]:
    """Every slice item of a multidimensional file."""
    items = grib_items(ds, info, options) if ds.driver == "GRIB" else _container(ds, info, options)
    if not items:
        raise RasterRejected(
            info.path,
            "no data variable on a georeferenced grid was found in this file.",
            next_step="Check that its variables have x/y (or lon/lat) coordinates; variables on "
            "x/y coordinates without a grid mapping are added to a dataset created with a CRS "
            "(`dataset create --crs`).",
        )
    return _unique_names(items)


def _container(ds: Any, info: FileInfo, options: InspectOptions) -> list[RasterItem]:
    subs = [
        (subdataset_uri(ds.driver, info.uri, sd), sd.rsplit(":", 1)[-1]) for sd in ds.subdatasets
    ]
    opened: list[tuple[str, str, Any]] = []
    try:
        if subs:
            for uri, var in subs:
                opened.append((uri, var, open_dataset(uri, confine=info.confine, path=info.path)))
        helpers = helper_names([sub.tags() for _, _, sub in opened] + [ds.tags()])
        if not subs and ds.count:
            var = ds.tags(1).get("NETCDF_VARNAME", "") or "Band"
            return _variable_items(ds, info.uri, var, info, options)
        items: list[RasterItem] = []
        bounds = TimeBounds(info.path, info.uri, ds.driver, info.confine)
        for uri, var, sub in opened:
            if sub.count == 0 or is_helper(var, sub.tags(), helpers):
                continue
            items.extend(_variable_items(sub, uri, var, info, options, bounds))
        return items
    finally:
        for _, _, sub in opened:
            sub.close()


def _variable_items(
    sub: Any,
    uri: str,
    var: str,
    info: FileInfo,
    options: InspectOptions,
    bounds: TimeBounds | None = None,
) -> list[RasterItem]:
    tags = sub.tags()
    override = None
    if has_geolocation(sub):  # curvilinear: 2-D lat/lon arrays (see geoloc.py)
        arrays = read_arrays(sub, info.path, info.confine)
        geo = geolocated_geo(info.path, options.dataset_crs, arrays)
    else:
        if sub.crs is None:
            if looks_lonlat(tags, sub):
                override = "EPSG:4326"
            elif sub.transform.is_identity or not options.dataset_crs:
                return []  # no x/y grid (bounds, static helper arrays)
            # else: x/y coordinates without a grid mapping: the dataset's CRS is assumed
        geo = compute_geo(sub, info.path, options.dataset_crs, crs_override=override)
    dims = parse_list(tags.get("NETCDF_DIM_EXTRA", ""))
    roles = dim_roles(dims, tags)
    units: dict[str, CFTimeUnits] = {}
    for d, role in roles.items():
        if role == "time":
            try:
                units[d] = parse_units(tags.get(f"{d}#units", ""), tags.get(f"{d}#calendar"))
            except CFTimeError as exc:
                raise RasterRejected(
                    info.path,
                    f"the time dimension '{d}' of variable '{var}' cannot be decoded: {exc}.",
                    next_step="Fix the CF 'units'/'calendar' attributes of the time variable.",
                ) from exc
    result, plan = scan_all(sub, info, options)
    dim_units: dict[str, str] = {}
    for d, role in roles.items():
        key = "StdZ" if role == "z" else d
        if role != "time":
            dim_units[key] = norm_unit(tags.get(f"{d}#units", ""))
    base_attrs: dict[str, Any] = {
        "unit": tags.get(f"{var}#units", ""),
        "description": tags.get(f"{var}#long_name") or tags.get(f"{var}#standard_name") or var,
        "dimension_units": dim_units,
        "driver": sub.driver,
    }
    if has_geolocation(sub):
        base_attrs[GEOLOCATION] = True
    if geo.crs_assumed:
        base_attrs[ASSUMED_CRS] = geo.native_crs  # no grid mapping: the dataset's CRS
    z_dims = [d for d, r in roles.items() if r == "z"]
    if z_dims:
        base_attrs["z_positive"] = tags.get(f"{z_dims[0]}#positive", "up").lower()
        base_attrs["z_dimension"] = z_dims[0]
    items: list[RasterItem] = []
    for b in range(1, sub.count + 1):
        btags = sub.tags(b)
        time: int | None = None
        end: int | None = None
        dims_out: dict[str, float] = {}
        name = var
        for d, role in roles.items():
            raw = btags.get(f"NETCDF_DIM_{d}")
            if raw is None:
                continue
            value = float(raw)
            if role == "time":
                try:
                    time = units[d].to_epoch_ms(value)
                except CFTimeError:
                    continue
                if bounds is not None:
                    end = bounds.end_of(tags.get(f"{d}#bounds"), value, units[d])
                name += f"_{iso(time)}"
            elif role == "z":
                down = tags.get(f"{d}#positive", "").lower() == "down" or (
                    f"{d}#positive" not in tags and d.lower().startswith("depth")
                )
                z = -value if down and value != 0 else value
                dims_out["StdZ"] = z
                name += f"_Z{z:g}"
            else:
                dims_out[d] = value
                name += f"_{d}{value:g}"
        if time is None:
            time = info.fallback_time
        items.append(
            slice_item(
                sub,
                uri,
                name,
                b,
                var,
                geo,
                info,
                result,
                plan,
                b - 1,
                time,
                end,
                dims_out,
                dict(base_attrs),
            )
        )
    return items


def _unique_names(items: list[RasterItem]) -> list[RasterItem]:
    seen: dict[str, int] = {}
    out: list[RasterItem] = []
    for item in items:
        count = seen.get(item.name, 0)
        seen[item.name] = count + 1
        out.append(item if count == 0 else replace(item, name=f"{item.name}_b{item.bands[0]}"))
    return out
