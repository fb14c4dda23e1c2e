"""Multidimensional files: one item per variable x time x level slice (NetCDF, GRIB).

NetCDF (and other GDAL containers with subdatasets): every data variable on a georeferenced
grid is a subdataset whose bands are its slices. Helper variables are skipped: coordinates
(``lat``, ``lon``, anything named in another variable's ``coordinates`` attribute), bounds
(``time_bnds``, anything named by a ``bounds``/``climatology`` attribute), grid mappings,
land/sea masks (``mask``, ``mask_*``, standard names ``land_binary_mask``/``sea_binary_mask``)
and variables without an x/y grid. Static 2-D fields (bathymetry ``h``) are kept as items
without time. Curvilinear grids (2-D latitude/longitude arrays, GDAL geolocation arrays) are
kept too: their footprint comes from the arrays (see :mod:`.geoloc`). Each band gives one item: ``uri`` = ``netcdf:"<file>":<var>``,
``bands = (band,)``, ``variable`` = the variable name, ``time`` from the band's
``NETCDF_DIM_<time>`` value decoded with the CF units and calendar, ``end_time`` from CF time
bounds, ``dimensions["StdZ"]`` from the vertical dimension (depth, z, lev, level, height,
plev, s_rho, …, or ``axis=Z``/``positive``). Depths (``positive="down"``) become negative
StdZ values (elevation convention, as ArcGIS shows them); ``attributes["z_positive"]`` keeps
the file's convention. Any other extra dimension is kept under its own name.

GRIB: every band (message) is one item. ``variable`` is ``GRIB_ELEMENT``, as the file names
it (``TMP``), whatever its levels. The level type is a dimension, ``LevelType``: the GRIB2
fixed-surface code (table 4.5: 1 surface, 100 isobaric, 103 height above ground, …), from
the product definition template or else from GDAL's level abbreviation. ``StdZ`` is the
numeric level GDAL reports with a unit in the band description (``85000[Pa] ISBL`` -> 85000,
unit ``Pa``; ``2[m] HTGL`` -> 2, unit ``m``; for a layer ``3000-0[Pa] SPDL`` the first value,
with both in ``attributes["level_range"]``); levels without a unit (surface, mean sea level,
tropopause, …) have no StdZ. Individual ensemble forecasts (templates 4.1 and 4.11) have an
``EnsembleMember`` dimension (the perturbation number). ``time`` is ``GRIB_VALID_TIME``;
``description`` is ``GRIB_COMMENT``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from livemosaic.adapters.raster.cf_time import CFTimeError, CFTimeUnits, parse_units
from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.dataset import open_dataset
from livemosaic.adapters.raster.geoloc import (
    GEOLOCATION,
    geolocated_geo,
    has_geolocation,
    read_arrays,
)
from livemosaic.adapters.raster.georef import Geo, compute_geo, pixel_type
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
from livemosaic.adapters.raster.stats import ScanPlan, ScanResult, scan
from livemosaic.adapters.raster.timeparse import iso
from livemosaic.core.models import BandStats, MaskKind, RasterItem
from livemosaic.core.ports import InspectOptions
from livemosaic.errors import RasterRejected

_GRIB_LEVEL = re.compile(
    r"^\s*(?P<a>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?:-(?P<b>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))?"
    r"\[(?P<unit>[^\]]*)\]\s*(?P<type>[^=\s]+)"
)
_GRIB_SHORT = re.compile(r"^(?P<levels>-?[\d.]+(?:--?[\d.]+)?)-(?P<type>.+)$")

# Dimensions of GRIB items besides StdTime and StdZ.
LEVEL_TYPE = "LevelType"  # GRIB2 fixed-surface type code (code table 4.5)
ENSEMBLE_MEMBER = "EnsembleMember"  # perturbation number of an ensemble forecast
# GDAL's level abbreviations (GRIB1 and GRIB2 alike) -> GRIB2 code table 4.5, for messages
# whose product definition template does not carry the code itself.
GRIB_LEVEL_TYPES: dict[str, int] = {
    "SFC": 1,
    "CBL": 2,
    "CTL": 3,
    "0DEG": 4,
    "ADCL": 5,
    "MWSL": 6,
    "TRO": 7,
    "NTAT": 8,
    "SEAB": 9,
    "EATM": 10,
    "TMPL": 20,
    "ISBL": 100,
    "MSL": 101,
    "GPML": 102,
    "HTGL": 103,
    "SIGL": 104,
    "HYBL": 105,
    "DBLL": 106,
    "THEL": 107,
    "SPDL": 108,
    "PVL": 109,
    "ETAL": 111,
    "DBSL": 160,
}


@dataclass(frozen=True, slots=True)
class FileInfo:
    """The file being inspected."""

    path: str
    uri: str
    size: int
    mtime_ns: int
    fallback_time: int | None  # from the file name, for slices without a time dimension
    confine: Confinement  # what the file (and its subdatasets) may read


def is_multidim(ds: Any) -> bool:
    """True for files handled slice by slice (NetCDF, GRIB, containers of subdatasets)."""
    return ds.driver in ("netCDF", "GRIB") or (ds.count == 0 and bool(ds.subdatasets))


def inspect_multidim(ds: Any, info: FileInfo, options: InspectOptions) -> list[RasterItem]:
    """Every slice item of a multidimensional file."""
    items = _grib_items(ds, info, options) if ds.driver == "GRIB" else _container(ds, info, options)
    if not items:
        raise RasterRejected(
            info.path,
            "no data variable on a georeferenced grid was found in this file.",
            next_step="Check that its variables have x/y (or lon/lat) coordinates.",
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
        geo = geolocated_geo(sub, info.path, options.dataset_crs, arrays)
    else:
        if sub.crs is None:
            if not looks_lonlat(tags, sub):
                return []  # no x/y grid (bounds, static helper arrays)
            override = "EPSG:4326"
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
    result, plan = _scan_all(sub, info, options)
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
            _slice_item(
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


def _scan_all(sub: Any, info: FileInfo, options: InspectOptions) -> tuple[ScanResult, ScanPlan]:
    indexes = tuple(range(1, sub.count + 1))
    scales = tuple(float(s) for s in sub.scales)
    offsets = tuple(float(o) for o in sub.offsets)
    packed = any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets)
    plan = ScanPlan(
        indexes=indexes,
        nodata=tuple(sub.nodatavals),
        scales=scales if packed else (),
        offsets=offsets if packed else (),
    )
    result = scan(
        sub,
        plan,
        path=info.path,
        validate=options.validate_pixels,
        stats=options.compute_stats,
        confine=info.confine,
    )
    return result, plan


def _slice_item(
    sub: Any,
    uri: str,
    name: str,
    band: int,
    variable: str,
    geo: Geo,
    info: FileInfo,
    result: ScanResult,
    plan: ScanPlan,
    pos: int,
    time: int | None,
    end: int | None,
    dims: dict[str, float],
    attrs: dict[str, Any],
) -> RasterItem:
    dtype = sub.dtypes[band - 1]
    nodata = plan.nodata[pos]
    packed = bool(plan.scales)
    is_float = dtype.startswith("float") or packed
    mask: MaskKind = "nodata" if nodata is not None else ("nan" if is_float else "none")
    stat = result.stats[pos] if result.stats else None
    return RasterItem(
        path=info.path,
        uri=uri,
        name=name,
        bands=(band,),
        footprint=geo.footprint,
        extent=geo.extent,
        native_crs=geo.native_crs,
        native_extent=geo.native_extent,
        width=int(sub.width),
        height=int(sub.height),
        cell_size_x=geo.cell_size_x,
        cell_size_y=geo.cell_size_y,
        low_ps=geo.low_ps,
        high_ps=geo.high_ps,
        pixel_type=pixel_type(dtype, packed=packed),
        band_names=(variable,),
        nodata=None if nodata is None else float(nodata),
        mask_kind=mask,
        stats=(stat,) if isinstance(stat, BandStats) else (),
        file_size=info.size,
        file_mtime_ns=info.mtime_ns,
        time=time,
        end_time=end,
        variable=variable,
        dimensions=dims,
        attributes=attrs,
        scale=plan.scales[pos] if packed else None,
        offset=plan.offsets[pos] if packed else None,
        overview_count=len(sub.overviews(band)),
    )


def _grib_items(ds: Any, info: FileInfo, options: InspectOptions) -> list[RasterItem]:
    geo = compute_geo(ds, info.path, options.dataset_crs)
    result, plan = _scan_all(ds, info, options)
    metas = [ds.tags(b) for b in range(1, ds.count + 1)]
    types: dict[str, dict[float, str]] = {}  # element -> level type code -> its name
    for b, t in enumerate(metas, start=1):
        code = _level_type_code(t)
        if code is not None:
            label = f"{_level_type(t)} ({_level_type_name(ds.descriptions[b - 1] or '')})"
            types.setdefault(t.get("GRIB_ELEMENT", "Band"), {})[code] = label
    items: list[RasterItem] = []
    for b, t in enumerate(metas, start=1):
        element = t.get("GRIB_ELEMENT", "Band")
        time = _grib_seconds(t.get("GRIB_VALID_TIME"))
        ref = _grib_seconds(t.get("GRIB_REF_TIME"))
        attrs: dict[str, Any] = {
            "unit": t.get("GRIB_UNIT", "").strip("[]"),
            "description": t.get("GRIB_COMMENT", element),
            "dimension_units": {},
            "dimension_descriptions": {},
            "driver": "GRIB",
            "grib_element": element,
            "grib_level": t.get("GRIB_SHORT_NAME", ""),
        }
        if ref is not None:
            attrs["reference_time"] = ref
        if t.get("GRIB_FORECAST_SECONDS", "").split(" ")[0].lstrip("-").isdigit():
            attrs["forecast_seconds"] = int(t["GRIB_FORECAST_SECONDS"].split(" ")[0])
        dims: dict[str, float] = {}
        name = element + (f"_{iso(time)}" if time is not None else "")
        code = _level_type_code(t)
        if code is not None:
            dims[LEVEL_TYPE] = code
            known = ", ".join(f"{c:g} = {n}" for c, n in sorted(types[element].items()))
            attrs["dimension_descriptions"][LEVEL_TYPE] = (
                f"GRIB fixed surface type (code table 4.5): {known}"
            )
            name += f"_{_level_type(t)}"
        level = _GRIB_LEVEL.match(ds.descriptions[b - 1] or "")
        if level and level["unit"] not in ("", "-"):
            dims["StdZ"] = float(level["a"])
            attrs["dimension_units"]["StdZ"] = level["unit"]
            name += f"_Z{level['a']}"
            if level["b"] is not None:
                attrs["level_range"] = [float(level["a"]), float(level["b"])]
                name += f"-{level['b']}"
        member = _ensemble_member(t)
        if member is not None:
            dims[ENSEMBLE_MEMBER] = member
            attrs["dimension_descriptions"][ENSEMBLE_MEMBER] = (
                "ensemble member (GRIB perturbation number)"
            )
            name += f"_M{member:g}"
        items.append(
            _slice_item(
                ds,
                info.uri,
                name,
                b,
                element,
                geo,
                info,
                result,
                plan,
                b - 1,
                time if time is not None else info.fallback_time,
                None,
                dims,
                attrs,
            )
        )
    return items


def _level_type(tags: dict[str, str]) -> str:
    match = _GRIB_SHORT.match(tags.get("GRIB_SHORT_NAME", ""))
    return match["type"] if match else tags.get("GRIB_SHORT_NAME", "") or "LEVEL"


def _level_type_name(description: str) -> str:
    """The long name GDAL gives a level type (``… ISBL="Isobaric surface"``)."""
    _, _, name = description.partition("=")
    return name.strip().strip('"') or "level"


def _assembled(tags: dict[str, str]) -> list[float]:
    """The product definition template values GDAL assembles (GRIB2), [] when absent."""
    try:
        return [float(v) for v in tags.get("GRIB_PDS_TEMPLATE_ASSEMBLED_VALUES", "").split()]
    except ValueError:
        return []


def _pdtn(tags: dict[str, str]) -> int | None:
    text = tags.get("GRIB_PDS_PDTN", "").strip()
    return int(text) if text.isdigit() else None


def _level_type_code(tags: dict[str, str]) -> float | None:
    """The GRIB2 fixed-surface type (code table 4.5) of a message.

    Product definition templates 4.0 to 4.15 carry it as their tenth value; otherwise (GRIB1,
    other templates) it comes from the level abbreviation GDAL reports, which follows the
    same table.
    """
    pdtn = _pdtn(tags)
    values = _assembled(tags)
    if pdtn is not None and pdtn <= 15 and len(values) > 9:
        return values[9]
    code = GRIB_LEVEL_TYPES.get(_level_type(tags).upper())
    return None if code is None else float(code)


def _ensemble_member(tags: dict[str, str]) -> float | None:
    """The perturbation number of an individual ensemble forecast (templates 4.1, 4.11)."""
    values = _assembled(tags)
    if _pdtn(tags) in (1, 11) and len(values) > 16:
        return values[16]
    return None


def _grib_seconds(value: str | None) -> int | None:
    if not value:
        return None
    head = value.strip().split(" ")[0]
    try:
        return int(float(head)) * 1000
    except ValueError:
        return None


def _unique_names(items: list[RasterItem]) -> list[RasterItem]:
    seen: dict[str, int] = {}
    out: list[RasterItem] = []
    for item in items:
        count = seen.get(item.name, 0)
        seen[item.name] = count + 1
        out.append(item if count == 0 else replace(item, name=f"{item.name}_b{item.bands[0]}"))
    return out
