"""Parsing ``mosaicRule``, ``renderingRule`` and ``multidimensionalDefinition`` (spec 7.4, 7.5).

Keys of these JSON objects are matched case-insensitively. A partial mosaic rule is
completed from the service defaults (method, sort field and value, order, operation) [CHOICE].
Every bad value raises InvalidParameter naming the parameter and the accepted form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from livemosaic.core.fields import resolve_field
from livemosaic.core.models import MAX_CATALOG_INT, ServiceSnapshot, SpatialRef
from livemosaic.core.mosaic_rules import (
    METHOD_BY_WIRE,
    OPERATION_BY_WIRE,
    MosaicMethod,
    MosaicRule,
    default_mosaic_rule,
    parse_sort_value,
    sort_field_problem,
)
from livemosaic.core.ports import DimensionFilter
from livemosaic.core.rendering import RenderingRule, canonical_function_name
from livemosaic.core.service_properties import service_properties
from livemosaic.core.where import parse_where
from livemosaic.errors import InvalidParameter, LiveMosaicError
from livemosaic.rest.image_params import parse_pixel_type
from livemosaic.rest.multidim_json import check_definition
from livemosaic.rest.params import parse_json, sr_from_json

MOSAIC_ACCEPTED = (
    'a JSON object such as {"mosaicMethod": "esriMosaicAttribute", "sortField": "AcquisitionDate", '
    '"sortValue": "2024/01/01", "ascending": true, "where": "...", "mosaicOperation": "MT_FIRST"}'
)
RENDERING_ACCEPTED = (
    'a JSON object such as {"rasterFunction": "Stretch", "rasterFunctionArguments": {...}}'
)
MD_ACCEPTED = (
    'a JSON array such as [{"variableName": "t2m", "dimensionName": "StdTime", '
    '"values": [1735689600000], "isSlice": true}]'
)

# (x, y, spatial reference or None) -> (x, y) in the dataset CRS
ToDataset = Callable[[float, float, SpatialRef | None], tuple[float, float]]


def _lower_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()}


def allowed_methods(snapshot: ServiceSnapshot) -> list[MosaicMethod]:
    """The mosaic methods a service allows (``allowedMosaicMethods``)."""
    return list(service_properties(snapshot.definition).allowed_mosaic_methods)


def _is_id(v: Any) -> bool:
    """True for a JSON number that is a whole number the catalog can store."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        return False
    return abs(v) <= MAX_CATALOG_INT


def _int_list(value: Any, name: str, key: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(_is_id(v) for v in value):
        raise InvalidParameter(
            name, f"'{key}' must be an array of integers.", accepted=MOSAIC_ACCEPTED
        )
    return tuple(int(v) for v in value)


def _bool(value: Any, name: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidParameter(name, f"'{key}' must be true or false.", accepted=MOSAIC_ACCEPTED)


def parse_md_definition(
    value: Any,
    name: str = "multidimensionalDefinition",
    snapshot: ServiceSnapshot | None = None,
) -> tuple[DimensionFilter, ...]:
    """A decoded multidimensionalDefinition array as dimension filters.

    Entries with neither a variable nor a dimension name are ignored (as js strips them).
    With ``snapshot``, an unknown variable, dimension or value is refused (400) with the
    valid ones (:func:`~livemosaic.rest.multidim_json.check_definition`).
    """
    filters = _md_filters(value, name)
    if snapshot is not None:
        check_definition(snapshot, filters, name)
    return filters


def _md_filters(value: Any, name: str) -> tuple[DimensionFilter, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidParameter(name, "it must be a JSON array of objects.", accepted=MD_ACCEPTED)
    out: list[DimensionFilter] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise InvalidParameter(name, "each entry must be a JSON object.", accepted=MD_ACCEPTED)
        e = _lower_keys(entry)
        variable = e.get("variablename")
        dimension = e.get("dimensionname")
        for key, v in (("variableName", variable), ("dimensionName", dimension)):
            if v is not None and not isinstance(v, str):
                raise InvalidParameter(name, f"'{key}' must be a string.", accepted=MD_ACCEPTED)
        if not variable and not dimension:
            continue
        raw_values = e.get("values") or []
        if not isinstance(raw_values, list):
            raw_values = [raw_values]
        values: list[float | tuple[float, float]] = []
        for v in raw_values:
            values.append(_md_value(v, name))
        if dimension and not values:
            raise InvalidParameter(
                name, f"dimension '{dimension}' has no values.", accepted=MD_ACCEPTED
            )
        out.append(DimensionFilter(variable or None, dimension or None, tuple(values)))
    return tuple(out)


def _md_value(v: Any, name: str) -> float | tuple[float, float]:
    if isinstance(v, list) and len(v) == 2:
        a, b = (_md_number(x, name) for x in v)
        return (min(a, b), max(a, b))
    return _md_number(v, name)


def _md_number(v: Any, name: str) -> float:
    if isinstance(v, bool):
        raise InvalidParameter(name, "a dimension value must be a number.", accepted=MD_ACCEPTED)
    if isinstance(v, int | float):
        number = float(v) if isinstance(v, float) or abs(v) <= MAX_CATALOG_INT else math.inf
        if math.isfinite(number):
            return number
    if isinstance(v, str):
        try:
            parsed = parse_sort_value(v)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed
    raise InvalidParameter(name, f"{str(v)[:40]!r} is not a dimension value.", accepted=MD_ACCEPTED)


def parse_mosaic_rule(
    text: str | None,
    snapshot: ServiceSnapshot,
    *,
    max_where_length: int,
    to_dataset: ToDataset | None = None,
    name: str = "mosaicRule",
) -> MosaicRule:
    """The mosaic rule of a request; the service default when absent."""
    default = default_mosaic_rule(snapshot.definition)
    if text is None:
        return default
    value = parse_json(text, name, MOSAIC_ACCEPTED)
    if value is None:
        return default
    if not isinstance(value, dict):
        raise InvalidParameter(name, "it must be a JSON object.", accepted=MOSAIC_ACCEPTED)
    obj = _lower_keys(value)
    rule = default
    method_text = obj.get("mosaicmethod")
    if method_text not in (None, ""):
        if not isinstance(method_text, str) or method_text.strip().lower() not in METHOD_BY_WIRE:
            raise InvalidParameter(
                name,
                f"mosaicMethod {str(method_text)[:40]!r} is not known.",
                accepted=", ".join(
                    "esriMosaic" + m
                    for m in (
                        "None",
                        "Center",
                        "Nadir",
                        "Viewpoint",
                        "Attribute",
                        "LockRaster",
                        "Northwest",
                        "Seamline",
                    )
                ),
            )
        method = METHOD_BY_WIRE[method_text.strip().lower()]
        allowed = allowed_methods(snapshot)
        if method not in allowed:
            raise InvalidParameter(
                name,
                f"mosaicMethod {method_text} is not allowed by this service.",
                accepted="one of allowedMosaicMethods: "
                + service_properties(snapshot.definition).allowed_mosaic_methods_text,
            )
        rule = replace(rule, method=method)
    if obj.get("where") not in (None, ""):
        where = obj["where"]
        if not isinstance(where, str):
            raise InvalidParameter(name, "'where' must be a string.", accepted=MOSAIC_ACCEPTED)
        try:
            rule = replace(rule, where=parse_where(where, max_length=max_where_length))
        except LiveMosaicError as exc:
            raise InvalidParameter(
                name, f"its where clause is not accepted: {exc.reason}"
            ) from None
    if obj.get("sortfield") not in (None, ""):
        field = resolve_field(str(obj["sortfield"]))
        rule = replace(rule, sort_field=field.name if field else str(obj["sortfield"]).strip())
    if "sortvalue" in obj:
        try:
            rule = replace(rule, sort_value=parse_sort_value(obj["sortvalue"]))
        except ValueError:
            raise InvalidParameter(
                name,
                f"sortValue {str(obj['sortvalue'])[:40]!r} is neither a number nor a date.",
                accepted="a number or a date such as 2024/09/12",
            ) from None
    if obj.get("ascending") is not None:
        rule = replace(rule, ascending=_bool(obj["ascending"], name, "ascending"))
    if obj.get("lockrasterids") is not None:
        rule = replace(rule, lock_raster_ids=_int_list(obj["lockrasterids"], name, "lockRasterIds"))
    if obj.get("fids") is not None:
        rule = replace(rule, fids=_int_list(obj["fids"], name, "fids"))
    if obj.get("viewpoint") is not None:
        rule = replace(rule, viewpoint=_viewpoint(obj["viewpoint"], name, to_dataset))
    op_text = obj.get("mosaicoperation")
    if op_text not in (None, ""):
        key = str(op_text).strip().lower()
        if not key.startswith("mt_"):
            key = "mt_" + key
        if key not in OPERATION_BY_WIRE:
            raise InvalidParameter(
                name,
                f"mosaicOperation {str(op_text)[:40]!r} is not known.",
                accepted="MT_FIRST, MT_LAST, MT_MIN, MT_MAX, MT_MEAN, MT_BLEND or MT_SUM",
            )
        rule = replace(rule, operation=OPERATION_BY_WIRE[key])
    if obj.get("itemrenderingrule") not in (None, ""):
        item_rule = obj["itemrenderingrule"]
        if isinstance(item_rule, str):  # some clients send the rule as JSON text
            item_rule = parse_json(item_rule, name, RENDERING_ACCEPTED)
        rule = replace(rule, item_rendering_rule=rendering_rule_from_json(item_rule, name))
    if obj.get("multidimensionaldefinition") is not None:
        rule = replace(
            rule,
            dimensions=parse_md_definition(obj["multidimensionaldefinition"], name, snapshot),
        )
    problem = sort_field_problem(rule.sort_field) if rule.method == "Attribute" else None
    if problem is not None:
        raise InvalidParameter(name, problem)
    if rule.method == "LockRaster" and not rule.lock_raster_ids:
        raise InvalidParameter(
            name, "esriMosaicLockRaster needs lockRasterIds.", accepted=MOSAIC_ACCEPTED
        )
    return rule


def _viewpoint(value: Any, name: str, to_dataset: ToDataset | None) -> tuple[float, float]:
    if not isinstance(value, dict):
        raise InvalidParameter(
            name, "viewpoint must be a point object.", accepted='{"x":..,"y":..}'
        )
    obj = _lower_keys(value)
    x, y = obj.get("x"), obj.get("y")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (x, y)):
        raise InvalidParameter(name, "viewpoint needs numeric x and y.", accepted='{"x":..,"y":..}')
    sr = sr_from_json(obj["spatialreference"], name) if obj.get("spatialreference") else None
    px, py = float(cast(float, x)), float(cast(float, y))
    return to_dataset(px, py, sr) if to_dataset is not None else (px, py)


def rendering_rule_from_json(
    value: Any, name: str = "renderingRule", depth: int = 0
) -> RenderingRule | None:
    """A decoded rendering rule as a RenderingRule chain (None for raw pixels)."""
    if depth > 20:
        raise InvalidParameter(name, "the raster function chain is nested too deeply.")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParameter(name, "it must be a JSON object.", accepted=RENDERING_ACCEPTED)
    obj = _lower_keys(value)
    if "rasterfunctiondefinition" in obj:
        raise InvalidParameter(
            name, "Raster function templates are not supported.", accepted=RENDERING_ACCEPTED
        )
    fname = obj.get("rasterfunction")
    if not isinstance(fname, str) or not fname.strip():
        raise InvalidParameter(name, "'rasterFunction' is missing.", accepted=RENDERING_ACCEPTED)
    try:
        function = canonical_function_name(fname)
    except LiveMosaicError as exc:
        raise InvalidParameter(name, exc.reason, accepted=RENDERING_ACCEPTED) from None
    args_raw = obj.get("rasterfunctionarguments") or {}
    if not isinstance(args_raw, dict):
        raise InvalidParameter(
            name, "'rasterFunctionArguments' must be an object.", accepted=RENDERING_ACCEPTED
        )
    variable = obj.get("variablename")
    arguments: dict[str, Any] = {}
    nested: RenderingRule | None = None
    for key, arg in args_raw.items():
        is_rule = isinstance(arg, dict) and any(
            str(k).lower() in ("rasterfunction", "rasterfunctiondefinition") for k in arg
        )
        if is_rule:
            if nested is not None:
                raise InvalidParameter(
                    name, "only one nested raster input is supported.", accepted=RENDERING_ACCEPTED
                )
            nested = rendering_rule_from_json(arg, name, depth + 1)
            continue
        if isinstance(variable, str) and key.lower() == variable.lower() and isinstance(arg, str):
            continue  # "$$" placeholders for the input raster
        arguments[key] = arg
    out_type = obj.get("outputpixeltype")
    pixel_type = (
        parse_pixel_type(out_type, name) if isinstance(out_type, str) and out_type.strip() else None
    )
    if function == "None" and nested is None and not arguments and pixel_type is None:
        return None
    return RenderingRule(
        function=function, arguments=arguments, output_pixel_type=pixel_type, raster=nested
    )


def parse_rendering_rule(text: str | None, name: str = "renderingRule") -> RenderingRule | None:
    """The renderingRule parameter (None = raw pixels)."""
    if text is None:
        return None
    return rendering_rule_from_json(parse_json(text, name, RENDERING_ACCEPTED), name)


def parse_rendering_rules(
    text: str | None, name: str = "renderingRules"
) -> list[RenderingRule | None]:
    """The identify ``renderingRules`` array."""
    if text is None:
        return []
    value = parse_json(text, name, "a JSON array of rendering rules")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidParameter(name, "it must be a JSON array of rendering rules.")
    return [rendering_rule_from_json(v, name) for v in value]


__all__ = [
    "allowed_methods",
    "parse_md_definition",
    "parse_mosaic_rule",
    "parse_rendering_rule",
    "parse_rendering_rules",
    "rendering_rule_from_json",
]
