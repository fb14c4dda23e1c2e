"""Catalog aggregates in PostgreSQL: extent, grouped statistics and distinct values.

Each function takes the ``FROM … WHERE …`` of an item query (:func:`.query.item_query_sql`)
and lets PostgreSQL aggregate, so the matching rows are scanned once by index and never loaded
into Python. Field names map to columns only through
:func:`~livemosaic.adapters.catalog.sqlwhere.column`. Columns are typed here, so a numeric
field needs no check of each value's type; sums and means of integers come back as
``numeric`` and are handed out as int (whole sums) or float. Groups and distinct values sort
nulls first, as SQLite does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from livemosaic.adapters.catalog.postgres.connection import PgConnection
from livemosaic.adapters.catalog.sqlwhere import column
from livemosaic.core.fields import NUMERIC_FIELDS
from livemosaic.core.models import Extent


class Statistic(Protocol):
    """One ``outStatistics`` entry (:class:`livemosaic.core.ports.FieldStatistic`)."""

    @property
    def kind(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def out_name(self) -> str: ...


def extent_of(conn: PgConnection, from_where: str, params: list[Any]) -> Extent | None:
    """The union of the bounding boxes of the selected items."""
    row = conn.execute(
        f"SELECT MIN(i.xmin), MIN(i.ymin), MAX(i.xmax), MAX(i.ymax) {from_where}", params
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return Extent(float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _aggregates(stat: Statistic) -> list[str]:
    col = column(stat.field, parameter="outStatistics")
    if stat.kind == "count":
        return [f"COUNT({col})"]
    if stat.field not in NUMERIC_FIELDS:
        return ["NULL"]
    if stat.kind in ("min", "max", "sum", "avg"):
        return [f"{stat.kind.upper()}({col})"]
    num = f"({col})::float8"
    return [f"COUNT({col})", f"SUM({num})", f"SUM({num} * {num})"]  # stddev, var


def _plain(value: Any, kind: str) -> Any:
    """A numeric result as int (a whole sum) or float."""
    if not isinstance(value, Decimal):
        return value
    if kind == "sum" and value == value.to_integral_value():
        return int(value)
    return float(value)


def _value(stat: Statistic, values: Sequence[Any]) -> Any:
    if stat.kind not in ("stddev", "var"):
        return _plain(values[0], stat.kind)
    n, total, total_sq = values
    if not n:
        return None
    if n == 1:
        return 0.0
    var = max((float(total_sq) - float(total) * float(total) / n) / (n - 1), 0.0)
    return var if stat.kind == "var" else math.sqrt(var)


def _page(offset: int, limit: int | None) -> list[Any]:
    return [None if limit is None else max(limit, 0), max(offset, 0)]


def statistics_of(
    conn: PgConnection,
    from_where: str,
    params: list[Any],
    statistics: Sequence[Statistic],
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
        sql += f" GROUP BY {', '.join(groups)} ORDER BY "
        sql += ", ".join(f"{g} ASC NULLS FIRST" for g in groups)
    sql += " LIMIT ? OFFSET ?"
    out: list[dict[str, Any]] = []
    for row in conn.execute(sql, [*params, *_page(offset, limit)]).fetchall():
        values = list(row)
        record: dict[str, Any] = dict(zip(group_by, values[: len(groups)], strict=True))
        at = len(groups)
        for stat, part in zip(statistics, parts, strict=True):
            record[stat.out_name] = _value(stat, values[at : at + len(part)])
            at += len(part)
        out.append(record)
    return out


def distinct_of(
    conn: PgConnection,
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
        f"{c} {'ASC NULLS FIRST' if asc else 'DESC NULLS LAST'}"
        for c, asc in ((column(f, parameter="orderByFields"), a) for f, a in order_by)
        if c in wanted
    ]
    order += [f"{c} ASC NULLS FIRST" for c in cols]
    sql = (
        f"SELECT DISTINCT {', '.join(cols)} {from_where} ORDER BY {', '.join(order)} "
        "LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, [*params, *_page(offset, limit)]).fetchall()
    return [tuple(r) for r in rows]


__all__ = ["distinct_of", "extent_of", "statistics_of"]
