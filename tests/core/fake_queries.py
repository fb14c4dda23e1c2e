"""Item queries as the store ports document them, for the in-memory stores."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from livemosaic.core.fields import NUMERIC_FIELDS, item_attributes, resolve_field
from livemosaic.core.models import (
    RasterItem,
)
from livemosaic.core.ports import (
    DimensionFilter,
    FieldStatistic,
    ItemQuery,
)
from livemosaic.core.where import evaluate

T = TypeVar("T")


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


# --- item queries ----------------------------------------------------------------------------


def _matches_value(value: float | None, wanted: Sequence[float | tuple[float, float]]) -> bool:
    if not wanted:
        return True
    if value is None:
        return False
    for w in wanted:
        if isinstance(w, tuple):
            if w[0] <= value <= w[1]:
                return True
        elif value == w:
            return True
    return False


def _dimension_ok(item: RasterItem, f: DimensionFilter) -> bool:
    if f.variable and (item.variable or "").lower() != f.variable.lower():
        return False
    if not f.dimension:
        return True
    if f.dimension.lower() == "stdtime":
        return _matches_value(None if item.time is None else float(item.time), f.values)
    dims = {k.lower(): v for k, v in item.dimensions.items()}
    return _matches_value(dims.get(f.dimension.lower()), f.values)


def _time_ok(item: RasterItem, window: tuple[int | None, int | None]) -> bool:
    if item.time is None:
        return False
    start = item.time
    end = item.end_time if item.end_time is not None else item.time
    lo, hi = window
    return (hi is None or start <= hi) and (lo is None or end >= lo)


def matches(item: RasterItem, query: ItemQuery) -> bool:
    """Whether an item passes every filter of a query (paging and order aside)."""
    if query.object_ids is not None and item.id not in query.object_ids:
        return False
    if query.extent is not None and not item.extent.intersects(query.extent):
        return False
    if query.time is not None and not _time_ok(item, query.time):
        return False
    if not all(_dimension_ok(item, f) for f in query.dimensions):
        return False
    if query.where is not None and not evaluate(query.where, item_attributes(item)):
        return False
    return query.pixel_size is None or (
        item.low_ps <= query.pixel_size * 2
        and (item.max_ps <= 0 or item.max_ps >= query.pixel_size)
    )


def ordered(items: list[RasterItem], query: ItemQuery) -> list[RasterItem]:
    """Items in a query's order: nearest first (when asked), then its fields, then OBJECTID."""
    items = sorted(items, key=lambda it: it.id or 0)
    for name, ascending in reversed(query.order_by):
        known = resolve_field(name)
        key = known.name if known else name

        def sort_key(it: RasterItem, key: str = key) -> tuple[int, Any]:
            value = item_attributes(it).get(key)
            return (1, 0) if value is None else (0, value)

        present = [it for it in items if sort_key(it)[0] == 0]
        missing = [it for it in items if sort_key(it)[0] == 1]
        present.sort(key=sort_key, reverse=not ascending)
        items = present + missing
    if query.nearest_to is not None:
        px, py = query.nearest_to
        sign = 1.0 if query.nearest_ascending else -1.0

        def dist(it: RasterItem) -> float:
            cx, cy = it.extent.center
            return sign * ((cx - px) ** 2 + (cy - py) ** 2)

        items.sort(key=dist)  # stable: field order and OBJECTID break ties
    return items


def nulls_first(key: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, 0) if v is None else (1, v) for v in key)


def page(rows: list[T], query: ItemQuery) -> list[T]:
    end = None if query.limit is None else query.offset + max(query.limit, 0)
    return rows[max(query.offset, 0) : end]


def statistic(stat: FieldStatistic, values: Sequence[Any]) -> Any:
    """One statistic over the field values of a group, as the port documents it."""
    if stat.kind == "count":
        return sum(1 for v in values if v is not None)
    if stat.field not in NUMERIC_FIELDS:
        return None
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums:
        return None
    if stat.kind == "min":
        return min(nums)
    if stat.kind == "max":
        return max(nums)
    if stat.kind == "sum":
        return sum(nums)
    mean = sum(nums) / len(nums)
    if stat.kind == "avg":
        return mean
    var = sum((v - mean) ** 2 for v in nums) / (len(nums) - 1) if len(nums) > 1 else 0.0
    return var if stat.kind == "var" else math.sqrt(var)


__all__ = ["matches", "now_ms", "nulls_first", "ordered", "page", "statistic"]
