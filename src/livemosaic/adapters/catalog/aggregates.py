"""Catalog aggregates in SQL: ids, extent, grouped statistics and distinct values.

Each function takes the ``FROM … WHERE …`` of an item query (:func:`item_query_sql`) and
lets SQLite aggregate, so a query's extent, statistics or distinct values cost one indexed
scan of the matching rows and never load items into Python. Field names map to columns only
through :func:`~livemosaic.adapters.catalog.sqlwhere.column`.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from livemosaic.adapters.catalog.sqlwhere import column
from livemosaic.core.fields import NUMERIC_FIELDS
from livemosaic.core.models import Extent
from livemosaic.core.ports import FieldStatistic, ItemQuery


def selects_everything(query: ItemQuery) -> bool:
    """True when a query selects every item of its dataset (paging and order aside)."""
    q = query
    return (
        q.object_ids is None
        and q.extent is None
        and q.time is None
        and q.where is None
        and not q.dimensions
        and q.pixel_size is None
    )


def extent_of(conn: sqlite3.Connection, from_where: str, params: list[Any]) -> Extent | None:
    """The union of the bounding boxes of the selected items."""
    row = conn.execute(
        f"SELECT MIN(i.xmin), MIN(i.ymin), MAX(i.xmax), MAX(i.ymax) {from_where}", params
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return Extent(float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _number(col: str) -> str:
    """The column's value when it is a number, else NULL (text never enters a sum)."""
    return f"(CASE WHEN typeof({col}) IN ('integer', 'real') THEN {col} END)"


def _aggregates(stat: FieldStatistic) -> list[str]:
    col = column(stat.field, parameter="outStatistics")
    if stat.kind == "count":
        return [f"COUNT({col})"]
    if stat.field not in NUMERIC_FIELDS:
        return ["NULL"]
    num = _number(col)
    if stat.kind in ("min", "max", "sum", "avg"):
        return [f"{stat.kind.upper()}({num})"]
    return [f"COUNT({num})", f"SUM({num})", f"SUM({num} * {num})"]  # stddev, var


def _value(stat: FieldStatistic, values: Sequence[Any]) -> Any:
    if stat.kind not in ("stddev", "var"):
        return values[0]
    n, total, total_sq = values
    if not n:
        return None
    if n == 1:
        return 0.0
    var = max((float(total_sq) - float(total) * float(total) / n) / (n - 1), 0.0)
    return var if stat.kind == "var" else math.sqrt(var)


def statistics_of(
    conn: sqlite3.Connection,
    from_where: str,
    params: list[Any],
    statistics: Sequence[FieldStatistic],
    group_by: Sequence[str],
    offset: int,
    limit: int | None,
) -> list[dict[str, Any]]:
    """One row per group: the group fields and each statistic under its output name."""
    groups = [column(g, parameter="groupByFieldsForStatistics") for g in group_by]
    parts = [_aggregates(s) for s in statistics]
    select = ", ".join([*groups, *(a for p in parts for a in p)]) or "COUNT(*)"
    sql = f"SELECT {select} {from_where}"
    if groups:
        keys = ", ".join(groups)
        sql += f" GROUP BY {keys} ORDER BY {keys}"
    sql += " LIMIT ? OFFSET ?"
    rows = conn.execute(sql, [*params, -1 if limit is None else max(limit, 0), max(offset, 0)])
    out: list[dict[str, Any]] = []
    for row in rows.fetchall():
        values = list(row)
        record: dict[str, Any] = dict(zip(group_by, values[: len(groups)], strict=True))
        at = len(groups)
        for stat, part in zip(statistics, parts, strict=True):
            record[stat.out_name] = _value(stat, values[at : at + len(part)])
            at += len(part)
        out.append(record)
    return out


def distinct_of(
    conn: sqlite3.Connection,
    from_where: str,
    params: list[Any],
    fields: Sequence[str],
    order_by: Sequence[tuple[str, bool]],
    offset: int,
    limit: int | None,
) -> list[tuple[Any, ...]]:
    """The distinct combinations of fields, ordered by ``order_by`` (within them) then them."""
    cols = [column(f, parameter="outFields") for f in fields]
    wanted = set(cols)
    order = [
        f"{c} {'ASC' if asc else 'DESC'}"
        for c, asc in ((column(f, parameter="orderByFields"), a) for f, a in order_by)
        if c in wanted
    ]
    order += cols
    sql = (
        f"SELECT DISTINCT {', '.join(cols)} {from_where} ORDER BY {', '.join(order)} "
        "LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, [*params, -1 if limit is None else max(limit, 0), max(offset, 0)])
    return [tuple(r) for r in rows.fetchall()]


__all__ = ["distinct_of", "extent_of", "selects_everything", "statistics_of"]
