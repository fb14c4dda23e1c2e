"""Typed service properties, and the effective limits of a service.

An image service's ArcGIS admin ``properties`` are stored as strings, as ArcGIS stores them
(``"4100"``, ``"true"``). This module is the one place they are read: :func:`check_properties`
validates them when they are set (admin ``edit``/``createService``, ``livemosaic service
publish``/``set``) and refuses a malformed or out-of-range value with an error naming the
property and the accepted form; :func:`service_properties` reads stored ones leniently — a value
that does not validate (written by an older version) is reported in ``problems`` and its default
is used, so it can never break a request.

Limits: ``maxImageWidth``, ``maxImageHeight``, ``maxRecordCount``, ``maxMosaicImageCount`` and
``maxSampleCount`` may only *lower* the server-wide limits (settings), never raise them.
:func:`effective_limits` combines the two; the service JSON advertises exactly what every
operation enforces because both call it. Keys not listed in :data:`PROPERTY_RULES` are kept as
strings and not interpreted.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from livemosaic.core.models import ServiceDefinition
from livemosaic.core.mosaic_rules import (
    METHOD_BY_SERVICE_NAME,
    METHOD_BY_WIRE,
    OPERATION_BY_WIRE,
    MosaicMethod,
    MosaicOperation,
    parse_sort_value,
    sort_field_problem,
    sortable_fields,
)
from livemosaic.errors import InvalidParameter

# Largest value any numeric limit property may take (the server's own limit still applies).
MAX_PROPERTY_INT = 2**31 - 1
# allowedMosaicMethods when not set: every method
ALL_METHODS = "NorthWest,Center,LockRaster,ByAttribute,Nadir,Viewpoint,Seamline,None"
# defaultResamplingMethod: accepted spellings -> the name the service JSON advertises
RESAMPLING_NAMES = {
    "0": "NearestNeighbor",
    "1": "Bilinear",
    "2": "Cubic",
    "3": "Majority",
    "nearestneighbor": "NearestNeighbor",
    "nearest": "NearestNeighbor",
    "bilinear": "Bilinear",
    "cubic": "Cubic",
    "majority": "Majority",
}


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    """Limits of image requests: the server's (from settings) or a service's effective ones."""

    max_image_width: int
    max_image_height: int
    max_record_count: int
    max_mosaic_image_count: int
    max_sample_count: int


@dataclass(frozen=True, slots=True)
class ServiceProperties:
    """The interpreted admin properties of a service (defaults where a key is absent)."""

    has_live_data: bool = False
    max_image_width: int | None = None
    max_image_height: int | None = None
    max_record_count: int | None = None
    max_mosaic_image_count: int | None = None
    max_sample_count: int | None = None
    default_compression_quality: int = 75
    default_resampling_method: str = "Bilinear"
    default_mosaic_method: MosaicMethod = "Northwest"
    allowed_mosaic_methods: tuple[MosaicMethod, ...] = tuple(
        METHOD_BY_SERVICE_NAME[m.lower()] for m in ALL_METHODS.split(",")
    )
    allowed_mosaic_methods_text: str = ALL_METHODS
    sort_field: str | None = None
    sort_value: float | None = None
    sort_ascending: bool = True
    mosaic_operator: MosaicOperation = "First"
    default_variable: str | None = None
    default_band_ids: tuple[int, ...] = ()
    min_scale: float = 0.0
    max_scale: float = 0.0
    allow_function: bool = True
    allow_copy: bool = True
    allow_analysis: bool = True
    allowed_users: frozenset[str] = frozenset()
    allowed_roles: frozenset[str] = frozenset()  # lower case
    problems: tuple[str, ...] = field(default=(), compare=False)


# --- value parsers: text -> value, ValueError with the accepted form --------------------------


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ValueError("true or false")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"an integer from {low} to {high}") from None
        if not (math.isfinite(number) and number.is_integer() and low <= number <= high):
            raise ValueError(f"an integer from {low} to {high}")
        return int(number)

    return parse


def _scale(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError("a number >= 0") from None
    if not (math.isfinite(number) and number >= 0):
        raise ValueError("a number >= 0")
    return number


def _method(text: str) -> MosaicMethod:
    key = text.lower()
    found = METHOD_BY_SERVICE_NAME.get(key) or METHOD_BY_WIRE.get(key)
    if found is None:
        raise ValueError("one of " + ALL_METHODS.replace(",", ", "))
    return found


def _methods(text: str) -> tuple[MosaicMethod, ...]:
    return tuple(_method(part.strip()) for part in text.split(",") if part.strip())


def _operation(text: str) -> MosaicOperation:
    key = text.lower()
    found = OPERATION_BY_WIRE.get(key if key.startswith("mt_") else "mt_" + key)
    if found is None:
        raise ValueError("First, Last, Min, Max, Mean, Blend or Sum")
    return found


def _resampling(text: str) -> str:
    found = RESAMPLING_NAMES.get(text.lower())
    if found is None:
        raise ValueError("NearestNeighbor, Bilinear, Cubic or Majority")
    return found


def _sort_value(text: str) -> float | None:
    try:
        value = parse_sort_value(text)
    except ValueError:
        raise ValueError("a number or a date such as 2024/09/12") from None
    if value is not None and not math.isfinite(value):
        raise ValueError("a finite number or a date such as 2024/09/12")
    return value


def _band_ids(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.strip().strip("[]").split(",") if p.strip()]
    try:
        ids = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError("zero-based band indexes such as 3,2,1") from None
    if any(not 0 <= i < 1000 for i in ids):
        raise ValueError("zero-based band indexes such as 3,2,1")
    return ids


def _names(text: str) -> frozenset[str]:
    return frozenset(v.strip() for v in text.split(",") if v.strip())


def _roles(text: str) -> frozenset[str]:
    return frozenset(v.lower() for v in _names(text))


def _text(text: str) -> str:
    return text


def _sort_field(text: str) -> str:
    if sort_field_problem(text) is not None:
        raise ValueError("a number or date field: " + ", ".join(sortable_fields()))
    return text


_LIMIT = _int_in(1, MAX_PROPERTY_INT)

# property key -> (ServiceProperties field, parser of its stripped, non-empty text)
PROPERTY_RULES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "hasLiveData": ("has_live_data", _bool),
    "maxImageWidth": ("max_image_width", _LIMIT),
    "maxImageHeight": ("max_image_height", _LIMIT),
    "maxRecordCount": ("max_record_count", _LIMIT),
    "maxMosaicImageCount": ("max_mosaic_image_count", _LIMIT),
    "maxSampleCount": ("max_sample_count", _LIMIT),
    "defaultCompressionQuality": ("default_compression_quality", _int_in(0, 100)),
    "defaultResamplingMethod": ("default_resampling_method", _resampling),
    "defaultMosaicMethod": ("default_mosaic_method", _method),
    "allowedMosaicMethods": ("allowed_mosaic_methods", _methods),
    "sortField": ("sort_field", _sort_field),
    "sortValue": ("sort_value", _sort_value),
    "sortAscending": ("sort_ascending", _bool),
    "mosaicOperator": ("mosaic_operator", _operation),
    "defaultVariable": ("default_variable", _text),
    "defaultBandIds": ("default_band_ids", _band_ids),
    "minScale": ("min_scale", _scale),
    "maxScale": ("max_scale", _scale),
    "allowFunction": ("allow_function", _bool),
    "allowCopy": ("allow_copy", _bool),
    "allowAnalysis": ("allow_analysis", _bool),
    "allowedUsers": ("allowed_users", _names),
    "allowedRoles": ("allowed_roles", _roles),
}
_FIELD_NAMES = frozenset(f.name for f in fields(ServiceProperties))
assert all(name in _FIELD_NAMES for name, _parse in PROPERTY_RULES.values())


def _parse(items: tuple[tuple[str, str], ...]) -> ServiceProperties:
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, raw in items:
        rule = PROPERTY_RULES.get(key)
        text = str(raw).strip()
        if rule is None or not text:
            continue  # not interpreted here, or unset: the default applies
        name, parse = rule
        try:
            values[name] = parse(text)
        except ValueError as exc:
            problems.append(f"{key}={text[:60]!r} is not valid (accepted: {exc}).")
            continue
        if key == "allowedMosaicMethods":
            values["allowed_mosaic_methods_text"] = text
    return replace(ServiceProperties(**values), problems=tuple(problems))


@functools.lru_cache(maxsize=512)
def _cached(items: tuple[tuple[str, str], ...]) -> ServiceProperties:
    return _parse(items)


def parse_properties(properties: Mapping[str, str]) -> ServiceProperties:
    """The typed properties; a value that does not validate is listed in ``problems`` and
    replaced by its default (the lenient reading of stored properties)."""
    return _cached(tuple(sorted((str(k), str(v)) for k, v in properties.items())))


def service_properties(definition: ServiceDefinition) -> ServiceProperties:
    """The typed properties of a service (cached per distinct set of properties)."""
    return parse_properties(definition.properties)


def check_properties(
    properties: Mapping[str, str], *, only: frozenset[str] | None = None
) -> ServiceProperties:
    """The typed properties, or InvalidParameter naming every property that does not validate.

    ``only`` restricts the check to those keys (an edit need not fix what it did not touch;
    untouched bad values keep being reported and replaced by their defaults).
    """
    parsed = parse_properties(properties)
    bad = [p for p in parsed.problems if only is None or p.split("=", 1)[0] in only]
    if bad:
        raise InvalidParameter("properties", " ".join(bad))
    return parsed


def lower_limit(own: int | None, server: int) -> int:
    """A limit as a service enforces it: the server's, lowered (never raised) by its own."""
    return server if own is None else min(own, server)


def effective_limits(properties: ServiceProperties, server: ServiceLimits) -> ServiceLimits:
    """The limits a service advertises and enforces: the server's, lowered by its properties."""
    return ServiceLimits(
        max_image_width=lower_limit(properties.max_image_width, server.max_image_width),
        max_image_height=lower_limit(properties.max_image_height, server.max_image_height),
        max_record_count=lower_limit(properties.max_record_count, server.max_record_count),
        max_mosaic_image_count=lower_limit(
            properties.max_mosaic_image_count, server.max_mosaic_image_count
        ),
        max_sample_count=lower_limit(properties.max_sample_count, server.max_sample_count),
    )


__all__ = [
    "ALL_METHODS",
    "PROPERTY_RULES",
    "RESAMPLING_NAMES",
    "ServiceLimits",
    "ServiceProperties",
    "check_properties",
    "effective_limits",
    "lower_limit",
    "parse_properties",
    "service_properties",
]
