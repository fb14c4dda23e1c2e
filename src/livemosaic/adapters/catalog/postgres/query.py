"""Item queries in PostgreSQL: the where-clause dialect and the indexed ``FROM … WHERE …``.

The where-clause walk and the multidimensional filters are the SQLite store's
(:mod:`livemosaic.adapters.catalog.sqlwhere`); only the dialect differs: TRUE/FALSE, ILIKE (SQLite's
LIKE ignores case) with no escape character unless one is given, ``= ANY(array)`` for long
lists, ``lower()`` for case-blind names. An extent or time window is answered by the GiST index
over (dataset, bounding box, time range) instead of the R*Tree.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from livemosaic.adapters.catalog.sqlwhere import (
    Dialect,
    compile_where,
    dimensions_sql,
    where_time_bounds,
)
from livemosaic.core.ports import ItemQuery
from livemosaic.errors import InvalidParameter


class PostgresDialect(Dialect):
    """PostgreSQL's spelling of what differs from SQLite."""

    true = "TRUE"
    false = "FALSE"
    like = "ILIKE"
    like_no_escape = " ESCAPE ''"  # PostgreSQL escapes with a backslash unless told otherwise

    def in_list(self, left: str, negated: bool, values: list[Any], params: list[Any]) -> str:
        """``left = ANY(array)``: the list travels as one array parameter."""
        params.append(values)
        return f"({'NOT ' if negated else ''}({left} = ANY(?)))"

    def equals_nocase(self, column: str) -> str:
        """Both sides lower-cased (the items_variable index is on ``lower(variable)``)."""
        return f"lower({column}) = lower(?)"

    def number(self, column: str) -> str:
        """Columns are typed: a numeric field's column holds numbers only."""
        return column

    def real(self, column: str) -> str:
        """The column as float8 (sums of squares of bigints would be ``numeric``)."""
        return f"({column})::float8"

    def ordered(self, column: str, ascending: bool) -> str:
        """Nulls first ascending and last descending, as SQLite orders them."""
        return f"{column} {'ASC NULLS FIRST' if ascending else 'DESC NULLS LAST'}"

    def page(self, offset: int, limit: int | None) -> list[Any]:
        """``LIMIT NULL`` is no limit."""
        return [None if limit is None else max(limit, 0), max(offset, 0)]

    def plain(self, value: Any, kind: str) -> Any:
        """Sums and means of integers come back as ``numeric``: int for whole sums, else
        float."""
        if not isinstance(value, Decimal):
            return value
        if kind == "sum" and value == value.to_integral_value():
            return int(value)
        return float(value)


POSTGRES = PostgresDialect()


def _time_range(query: ItemQuery) -> tuple[float | None, float | None]:
    """The time window a query's items must overlap: its time filter and the time bounds its
    where clause ANDs (None = open)."""
    low, high = where_time_bounds(query.where)
    if query.time is not None:
        t1, t2 = query.time
        if t1 is not None:
            low = float(t1) if low is None else max(low, float(t1))
        if t2 is not None:
            high = float(t2) if high is None else min(high, float(t2))
    return low, high


def _range_bound(value: float | None, up: bool) -> int | None:
    """An int8range bound holding every integer time a float bound allows."""
    if value is None:
        return None
    if value >= 2**63 - 1 or value <= -(2**63):
        return None  # beyond any epoch-ms time: no bound
    return math.floor(value) if up else math.ceil(value)


def item_query_sql(dataset_id: int, query: ItemQuery) -> tuple[str, list[Any]]:
    """``FROM … WHERE …`` selecting a query's items (``?`` parameters).

    Object ids drive a primary-key lookup; an extent and a time window (the query's, narrowed
    by the time comparisons its where clause ANDs) the GiST index, or the (dataset, time)
    index when the planner finds it narrower. The range conditions only narrow the
    candidates; the exact conditions on the columns decide. Items without a time never match
    a time window.
    """
    q = query
    conds: list[str] = ["i.dataset_id = ?::bigint"]  # bigint, so the GiST index takes it
    params: list[Any] = [dataset_id]
    if q.object_ids is not None:
        conds.append("i.id = ANY(?)")
        params.append([int(x) for x in q.object_ids])
    if q.extent is not None:
        e = q.extent
        if not e.is_valid():
            raise InvalidParameter("extent", f"{e} is not a valid rectangle.")
        conds.append("i.bbox && box(point(?, ?), point(?, ?))")
        params += [e.xmin, e.ymin, e.xmax, e.ymax]
    low, high = _time_range(q)
    lo, hi = _range_bound(low, False), _range_bound(high, True)
    if lo is not None and hi is not None and lo > hi:
        conds.append("FALSE")
    elif lo is not None or hi is not None:
        conds.append("i.trange && int8range(?::bigint, ?::bigint, '[]')")
        params += [lo, hi]
    if q.time is not None:
        t1, t2 = q.time
        if t2 is not None:
            conds.append("i.time <= ?")
            params.append(t2)
        if t1 is not None:
            conds.append("i.time_end >= ?")
            params.append(t1)
        if t1 is None and t2 is None:
            conds.append("i.time IS NOT NULL")  # a time filter keeps only items with a time
    if q.where is not None:
        sql, where_params = compile_where(q.where, dialect=POSTGRES)
        conds.append(sql)
        params += where_params
    dims = dimensions_sql(q.dimensions, dialect=POSTGRES)
    if dims is not None:
        conds.append(dims[0])
        params += dims[1]
    if q.pixel_size is not None:
        conds.append("i.low_ps <= ? AND (i.max_ps <= 0 OR i.max_ps >= ?)")
        params += [q.pixel_size * 2.0, q.pixel_size]
    return "FROM items AS i WHERE " + " AND ".join(conds), params
