"""The ``multidimensionalInfo`` resource (spec 6.5) from a snapshot's variable summaries.

Time dimensions are ``StdTime`` (epoch ms, unit ISO8601), vertical ones ``StdZ``. Regular
spacing is detected in days/hours/minutes/seconds/milliseconds, and in calendar months or
years (same day of month, or every value the last day of its month).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from livemosaic.core.models import DimensionSummary, ServiceSnapshot, VariableSummary

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


__all__ = ["multidimensional_info", "time_regularity"]
