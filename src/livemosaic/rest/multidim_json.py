"""The ``multidimensionalInfo`` resource (spec 6.5) from a snapshot's variable summaries.

Time dimensions are ``StdTime`` (epoch ms, unit ISO8601), vertical ones ``StdZ``. Regular
spacing is detected in days/hours/minutes/seconds/milliseconds, and in calendar months or
years (same day of month, or every value the last day of its month).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from livemosaic.core.models import DimensionSummary, ServiceSnapshot, VariableSummary
from livemosaic.core.ports import DimensionFilter
from livemosaic.errors import InvalidParameter

_DAY = 86_400_000
_UNITS = (
    ("Days", _DAY),
    ("Hours", 3_600_000),
    ("Minutes", 60_000),
    ("Seconds", 1000),
    ("Milliseconds", 1),
)


def time_regularity(values: tuple[float, ...]) -> tuple[bool, float | None, str | None]:
    """Whether epoch-ms values are evenly spaced: (regular, interval, unit name)."""
    if len(values) < 2:
        return False, None, None
    ints = [int(v) for v in values]
    diffs = {b - a for a, b in zip(ints, ints[1:], strict=False)}
    if len(diffs) == 1:
        step = diffs.pop()
        for unit, size in _UNITS:
            if step % size == 0:
                return True, step / size, unit
    dates = [datetime.fromtimestamp(v / 1000, tz=UTC) for v in ints]
    months = [d.year * 12 + d.month for d in dates]
    steps = {b - a for a, b in zip(months, months[1:], strict=False)}
    clock = {(d.hour, d.minute, d.second) for d in dates}
    same_day = len({d.day for d in dates}) == 1
    month_end = all((d.replace(day=28) + timedelta(days=4)).month != d.month for d in dates)
    if len(steps) == 1 and len(clock) == 1 and (same_day or month_end):
        step_m = steps.pop()
        if step_m > 0:
            if step_m % 12 == 0:
                return True, step_m / 12, "Years"
            return True, float(step_m), "Months"
    return False, None, None


def _dimension_json(dim: DimensionSummary, policy: str) -> dict[str, Any]:
    is_time = dim.name.lower() == "stdtime"
    values = sorted(dim.values)
    if is_time:
        regular, interval, unit = time_regularity(tuple(values))
    else:
        diffs = [b - a for a, b in zip(values, values[1:], strict=False)]
        regular = bool(diffs) and max(diffs) - min(diffs) <= 1e-9 * max(1.0, abs(max(diffs)))
        interval = diffs[0] if regular else None
        unit = dim.unit or None
    out: dict[str, Any] = {
        "name": dim.name,
        "description": dim.description or ("time" if is_time else dim.name),
        "unit": "ISO8601" if is_time else dim.unit,
        "field": dim.name,
        "extent": [values[0], values[-1]] if values else [],
        "hasRegularIntervals": regular,
        "hasRanges": False,
    }
    if regular:
        out["interval"] = interval
        out["intervalUnit"] = unit or ""
    if policy == "always" or (policy == "ifirregular" and not regular):
        out["values"] = [int(v) if is_time else v for v in values]
    return out


def _variable_json(variable: VariableSummary, policy: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": variable.name,
        "description": variable.description or variable.name,
        "unit": variable.unit,
        "dimensions": [_dimension_json(d, policy) for d in variable.dimensions],
    }
    if variable.stats is not None:
        s = variable.stats
        out["statistics"] = [
            {"min": s.min, "max": s.max, "mean": s.mean, "standardDeviation": s.std}
        ]
    out["attributes"] = {}
    return out


def multidimensional_info(snapshot: ServiceSnapshot, policy: str) -> dict[str, Any]:
    """The ``multidimensionalInfo`` resource (6.5); ``policy`` is always/never/ifirregular."""
    return {
        "multidimensionalInfo": {
            "variables": [_variable_json(v, policy) for v in snapshot.summary.variables]
        }
    }


__all__ = ["check_definition", "multidimensional_info", "time_regularity"]


def enumerate_slices(snapshot: ServiceSnapshot) -> list[list[dict[str, Any]]]:
    """Every slice of the service as a multidimensionalDefinition, in a stable order.

    A slice is one value of every dimension of one variable (the cube of its dimension
    values, as ArcGIS enumerates them); the position in this list is the ``sliceId``.
    """
    out: list[list[dict[str, Any]]] = []
    for variable in snapshot.summary.variables:
        combos: list[list[dict[str, Any]]] = [[]]
        for dim in variable.dimensions:
            combos = [
                [
                    *c,
                    {
                        "variableName": variable.name,
                        "dimensionName": dim.name,
                        "values": [v],
                        "isSlice": True,
                    },
                ]
                for c in combos
                for v in dim.values
            ]
        out.extend(c for c in combos if c)
    return out


def _matches(definition: list[dict[str, Any]], filters: list[DimensionFilter]) -> bool:
    for f in filters:
        for entry in definition:
            if f.variable and f.variable.lower() != str(entry["variableName"]).lower():
                return False
            if f.dimension and f.dimension.lower() == str(entry["dimensionName"]).lower():
                value = float(entry["values"][0])
                ok = any(
                    (lo <= value <= hi) if isinstance(v, tuple) else value == v
                    for v in f.values
                    for lo, hi in [v if isinstance(v, tuple) else (v, v)]
                )
                if not ok:
                    return False
    return True


def slices_json(snapshot: ServiceSnapshot, filters: list[DimensionFilter]) -> dict[str, Any]:
    """The ``{svc}/slices`` resource: slice ids with their definitions (optionally filtered)."""
    slices = [
        {"sliceId": i, "multidimensionalDefinition": d}
        for i, d in enumerate(enumerate_slices(snapshot))
        if _matches(d, filters)
    ]
    return {"slices": slices}


def slice_filters(snapshot: ServiceSnapshot, slice_id: int) -> tuple[DimensionFilter, ...]:
    """The dimension filters selecting one slice (InvalidParameter for an unknown id)."""
    slices = enumerate_slices(snapshot)
    if not 0 <= slice_id < len(slices):
        raise InvalidParameter(
            "sliceId",
            f"{slice_id} is not a slice of this service.",
            accepted=f"0..{len(slices) - 1}",
        )
    return tuple(
        DimensionFilter(e["variableName"], e["dimensionName"], (float(e["values"][0]),))
        for e in slices[slice_id]
    )


_LISTED = 40  # valid values named in an error, at most


def _value_text(dim: DimensionSummary, value: float) -> str:
    if dim.name.lower() == "stdtime":
        return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    return f"{value:g}"


def _listing(dim: DimensionSummary) -> str:
    values = sorted(dim.values)
    shown = ", ".join(_value_text(dim, v) for v in values[:_LISTED])
    more = f" … ({len(values)} values, see multidimensionalInfo)" if len(values) > _LISTED else ""
    return f"{dim.name}: {shown}{more}" if values else f"{dim.name}: no values"


def _has_value(dim: DimensionSummary, value: float | tuple[float, float]) -> bool:
    """A point matches a value; a range holds at least one value. Any time is accepted: time
    is continuous and live data grows (a time without data draws nothing, as ``time`` does)."""
    if dim.name.lower() == "stdtime":
        return True
    values = dim.values
    if isinstance(value, tuple):
        lo, hi = value
        return any(lo <= v <= hi for v in values)
    return any(v == value or abs(v - value) <= 1e-9 * max(1.0, abs(v)) for v in values)


def check_definition(
    snapshot: ServiceSnapshot, filters: tuple[DimensionFilter, ...], name: str
) -> None:
    """InvalidParameter (400) naming the valid ones for an unknown variable, dimension or
    dimension value of a multidimensionalDefinition (nothing to check without filters)."""
    if not filters:
        return
    variables = {v.name.casefold(): v for v in snapshot.summary.variables}
    if not variables:
        raise InvalidParameter(
            name,
            "this service has no variables (it is not multidimensional).",
            accepted="no multidimensionalDefinition",
        )
    for f in filters:
        chosen = list(variables.values())
        if f.variable:
            found = variables.get(f.variable.strip().casefold())
            if found is None:
                raise InvalidParameter(
                    name,
                    f"variable '{f.variable[:60]}' is not a variable of this service.",
                    accepted="one of " + ", ".join(v.name for v in snapshot.summary.variables),
                )
            chosen = [found]
        if not f.dimension:
            continue
        dims = [
            d for v in chosen for d in v.dimensions if d.name.casefold() == f.dimension.casefold()
        ]
        if not dims:
            known = sorted({d.name for v in chosen for d in v.dimensions})
            where = f"variable '{chosen[0].name}'" if f.variable else "any variable"
            raise InvalidParameter(
                name,
                f"dimension '{f.dimension[:60]}' is not a dimension of {where}.",
                accepted="one of " + (", ".join(known) or "no dimensions"),
            )
        for value in f.values:
            if not any(_has_value(d, value) for d in dims):
                shown = (
                    f"{_value_text(dims[0], value[0])}..{_value_text(dims[0], value[1])}"
                    if isinstance(value, tuple)
                    else _value_text(dims[0], value)
                )
                raise InvalidParameter(
                    name,
                    f"{dims[0].name} {shown} is not a value of "
                    f"{chosen[0].name if f.variable else 'this service'}.",
                    accepted=_listing(dims[0]),
                )
