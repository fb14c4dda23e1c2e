"""GRIB 1 and 2 files: one item per message.

Every band (message) is one item. ``variable`` is ``GRIB_ELEMENT``, as the file names
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
from typing import Any

from livemosaic.adapters.raster.georef import compute_geo
from livemosaic.adapters.raster.slices import FileInfo, scan_all, slice_item
from livemosaic.adapters.raster.timeparse import iso
from livemosaic.core.models import RasterItem
from livemosaic.core.ports import InspectOptions

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


def grib_items(ds: Any, info: FileInfo, options: InspectOptions) -> list[RasterItem]:
    """One item per message of an open GRIB file."""
    geo = compute_geo(ds, info.path, options.dataset_crs)
    result, plan = scan_all(ds, info, options)
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
            slice_item(
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
