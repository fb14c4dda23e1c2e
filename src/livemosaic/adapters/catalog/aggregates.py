"""Catalog aggregates in SQL: ids, extent, grouped statistics and distinct values, for every
catalog store (what differs between SQLite and PostgreSQL is the ``Dialect``'s).

Each function takes the ``FROM … WHERE …`` of an item query (:func:`item_query_sql`) and
lets SQLite aggregate, so a query's extent, statistics or distinct values cost one indexed
scan of the matching rows and never load items into Python. Field names map to columns only
through :func:`~livemosaic.adapters.catalog.sqlwhere.column`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from livemosaic.adapters.catalog.sqlwhere import SQLITE, Dialect, column
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


def extent_of(conn: Any, from_where: str, params: list[Any]) -> Extent | None:
    """The union of the bounding boxes of the selected items."""
    row = conn.execute(
        f"SELECT MIN(i.xmin), MIN(i.ymin), MAX(i.xmax), MAX(i.ymax) {from_where}", params
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return Extent(float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _aggregates(stat: FieldStatistic, dialect: Dialect) -> list[str]:
    col = column(stat.field, parameter="outStatistics")
    if stat.kind == "count":
        return [f"COUNT({col})"]
    if stat.field not in NUMERIC_FIELDS:
        return ["NULL"]
    num = dialect.number(col)
    if stat.kind in ("min", "max", "sum", "avg"):
        return [f"{stat.kind.upper()}({num})"]
    real = dialect.real(col)
    return [f"COUNT({num})", f"SUM({real})", f"SUM({real} * {real})"]  # stddev, var


def _value(stat: FieldStatistic, values: Sequence[Any], dialect: Dialect) -> Any:
    if stat.kind not in ("stddev", "var"):
        return dialect.plain(values[0], stat.kind)
    n, total, total_sq = values
    if not n:
        return None
    if n == 1:
        return 0.0
    var = max((float(total_sq) - float(total) * float(total) / n) / (n - 1), 0.0)
    return var if stat.kind == "var" else math.sqrt(var)


def statistics_of(
    conn: Any,
    from_where: str,
    params: list[Any],
    statistics: Sequence[FieldStatistic],
    group_by: Sequence[str],
    offset: int,
    limit: int | None,
    dialect: Dialect = SQLITE,
) -> list[dict[str, Any]]:
    """One row per group: the group fields and each statistic under its output name."""
    groups = [column(g, parameter="groupByFieldsForStatistics") for g in group_by]
    parts = [_aggregates(s, dialect) for s in statistics]
    select = ", ".join([*groups, *(a for p in parts for a in p)]) or "COUNT(*)"
    sql = f"SELECT {select} {from_where}"
    if groups:
        sql += f" GROUP BY {', '.join(groups)} ORDER BY "
        sql += ", ".join(dialect.ordered(g, True) for g in groups)
    sql += " LIMIT ? OFFSET ?"
    rows = conn.execute(sql, [*params, *dialect.page(offset, limit)])
    out: list[dict[str, Any]] = []
    for row in rows.fetchall():
        values = list(row)
        record: dict[str, Any] = dict(zip(group_by, values[: len(groups)], strict=True))
        at = len(groups)
        for stat, part in zip(statistics, parts, strict=True):
            record[stat.out_name] = _value(stat, values[at : at + len(part)], dialect)
            at += len(part)
        out.append(record)
    return out


def distinct_of(
    conn: Any,
    from_where: str,
    params: list[Any],
    fields: Sequence[str],
    order_by: Sequence[tuple[str, bool]],
    offset: int,
    limit: int | None,
    dialect: Dialect = SQLITE,
) -> list[tuple[Any, ...]]:
    """The distinct combinations of fields, ordered by ``order_by`` (within them) then them."""
    cols = [column(f, parameter="outFields") for f in fields]
    wanted = set(cols)
    order = [
        dialect.ordered(c, asc)
        for c, asc in ((column(f, parameter="orderByFields"), a) for f, a in order_by)
        if c in wanted
    ]
    order += [dialect.ordered(c, True) for c in cols]
    sql = (
        f"SELECT DISTINCT {', '.join(cols)} {from_where} ORDER BY {', '.join(order)} "
        "LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, [*params, *dialect.page(offset, limit)])
    return [tuple(r) for r in rows.fetchall()]


__all__ = ["distinct_of", "extent_of", "selects_everything", "statistics_of"]
