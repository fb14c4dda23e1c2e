"""Compile where-clause trees and item queries to parameterised SQL over the ``items`` table.

Field names come only from the fixed :data:`COLUMNS` map and values only travel as
parameters, so no client text ever becomes SQL. One walk over the where-clause tree serves
both stores; a :class:`Dialect` says what differs (SQLite by default, PostgreSQL in
:mod:`livemosaic.adapters.catalog.postgres.query`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from livemosaic.core.fields import CATALOG_FIELDS, resolve_field
from livemosaic.core.ports import DimensionFilter, ItemQuery
from livemosaic.core.where_ast import (
    And,
    Between,
    Compare,
    Condition,
    Const,
    Expr,
    Field,
    Func,
    In,
    IsNull,
    Like,
    Literal_,
    Not,
    Or,
)
from livemosaic.errors import InvalidParameter

# catalog field -> column of ``items``
COLUMNS: dict[str, str] = {
    "OBJECTID": "id",
    "Name": "name",
    "MinPS": "min_ps",
    "MaxPS": "max_ps",
    "LowPS": "low_ps",
    "HighPS": "high_ps",
    "Category": "category",
    "Tag": "tag",
    "GroupName": "group_name",
    "ProductName": "product_name",
    "CenterX": "center_x",
    "CenterY": "center_y",
    "ZOrder": "zorder",
    "Shape_Length": "shape_length",
    "Shape_Area": "shape_area",
    "AcquisitionDate": "time",
    "StdTime": "time",
    "StdTimeEnd": "time_end",
    "Variable": "variable",
    "Dimensions": "dimension_names",
    "StdZ": "std_z",
    "BandCount": "band_count",
    "PixelType": "pixel_type",
    "DateAdded": "date_added",
}
assert set(COLUMNS) == {f.name for f in CATALOG_FIELDS}, "every catalog field needs a column"

IN_LIST_INLINE = 50  # longer IN lists travel as one parameter


class Dialect:
    """The SQL that differs between catalog stores; this base class writes SQLite's."""

    true = "1"
    false = "0"
    like = "LIKE"  # SQLite's LIKE ignores ASCII case
    like_no_escape = ""  # what follows a LIKE without an ESCAPE clause

    def in_list(self, left: str, negated: bool, values: list[Any], params: list[Any]) -> str:
        """``left [NOT] IN`` a long list of values, passed as one parameter."""
        params.append(json.dumps(values))
        return f"({left} {'NOT ' if negated else ''}IN (SELECT value FROM json_each(?)))"

    def equals_nocase(self, column: str) -> str:
        """``column`` equals one text parameter, ignoring case."""
        return f"{column} = ? COLLATE NOCASE"

    # -- aggregates (adapters/catalog/aggregates) --------------------------------------------
    def number(self, column: str) -> str:
        """The column's value when it is a number, else NULL (text never enters a sum: SQLite
        columns take any type)."""
        return f"(CASE WHEN typeof({column}) IN ('integer', 'real') THEN {column} END)"

    def real(self, column: str) -> str:
        """The column as a floating-point number, for sums of squares."""
        return self.number(column)

    def ordered(self, column: str, ascending: bool) -> str:
        """An ORDER BY term; nulls come first ascending (SQLite's order)."""
        return f"{column} {'ASC' if ascending else 'DESC'}"

    def page(self, offset: int, limit: int | None) -> list[Any]:
        """The parameters of ``LIMIT ? OFFSET ?`` (no limit: -1)."""
        return [-1 if limit is None else max(limit, 0), max(offset, 0)]

    def plain(self, value: Any, kind: str) -> Any:
        """An aggregate's value as Python hands it on (int or float)."""
        return value


SQLITE = Dialect()


def column(field_name: str, alias: str = "i", parameter: str = "where") -> str:
    """The qualified column of a catalog field (InvalidParameter for unknown names)."""
    found = resolve_field(field_name)
    if found is None:
        valid = ", ".join(COLUMNS)
        raise InvalidParameter(parameter, f"unknown field '{field_name}'.", accepted=valid)
    return f"{alias}.{COLUMNS[found.name]}"


class _Compiler:
    def __init__(self, alias: str, dialect: Dialect) -> None:
        self.alias = alias
        self.dialect = dialect
        self.params: list[Any] = []

    def expr(self, e: Expr) -> str:
        if isinstance(e, Field):
            return column(e.name, self.alias)
        if isinstance(e, Literal_):
            if e.value is None:
                return "NULL"
            self.params.append(e.value)
            return "?"
        if isinstance(e, Func):
            fn = "upper" if e.name == "UPPER" else "lower"
            return f"{fn}({self.expr(e.arg)})"
        raise InvalidParameter("where", f"unsupported expression {e!r}.")

    def cond(self, c: Condition) -> str:
        if isinstance(c, Const):
            return self.dialect.true if c.value else self.dialect.false
        if isinstance(c, And | Or):
            joiner = " AND " if isinstance(c, And) else " OR "
            return "(" + joiner.join(self.cond(p) for p in c.parts) + ")"
        if isinstance(c, Not):
            return f"(NOT {self.cond(c.part)})"
        if isinstance(c, Compare):
            return f"({self.expr(c.left)} {c.op} {self.expr(c.right)})"
        if isinstance(c, IsNull):
            return f"({self.expr(c.expr)} IS {'NOT ' if c.negated else ''}NULL)"
        neg = "NOT " if c.negated else ""
        if isinstance(c, Between):
            left = self.expr(c.expr)
            return f"({left} {neg}BETWEEN {self.expr(c.low)} AND {self.expr(c.high)})"
        if isinstance(c, Like):
            left = self.expr(c.expr)
            self.params.append(c.pattern)
            like = self.dialect.like
            if c.escape is None:
                return f"({left} {neg}{like} ?{self.dialect.like_no_escape})"
            self.params.append(c.escape)
            return f"({left} {neg}{like} ? ESCAPE ?)"
        if not isinstance(c, In):
            raise InvalidParameter("where", f"unsupported condition {c!r}.")
        left = self.expr(c.expr)
        values = [v.value for v in c.values]
        if len(values) > IN_LIST_INLINE:
            return self.dialect.in_list(left, c.negated, values, self.params)
        marks = ", ".join(self.expr(v) for v in c.values)
        return f"({left} {neg}IN ({marks}))"


def compile_where(
    cond: Condition, alias: str = "i", dialect: Dialect = SQLITE
) -> tuple[str, list[Any]]:
    """SQL text and parameters of a condition over the items table aliased ``alias``."""
    comp = _Compiler(alias, dialect)
    return comp.cond(cond), comp.params


def order_clause(
    order_by: Sequence[tuple[str, bool]],
    alias: str = "i",
    *,
    nearest_to: tuple[float, float] | None = None,
    nearest_ascending: bool = True,
) -> tuple[str, list[Any]]:
    """``ORDER BY`` over catalog fields (NULLs last), OBJECTID last as the tie-breaker.

    With ``nearest_to`` the first key is the squared distance of the item centre to that
    point (computed by SQLite for the matching rows only; a top-N sort with the LIMIT).
    """
    terms = []
    params: list[Any] = []
    if nearest_to is not None:
        x, y = float(nearest_to[0]), float(nearest_to[1])
        terms.append(
            f"(({alias}.center_x - ?) * ({alias}.center_x - ?) + "
            f"({alias}.center_y - ?) * ({alias}.center_y - ?)) "
            f"{'ASC' if nearest_ascending else 'DESC'}"
        )
        params += [x, x, y, y]
    for name, ascending in order_by:
        col = column(name, alias, parameter="orderByFields")
        terms.append(f"{col} {'ASC' if ascending else 'DESC'} NULLS LAST")
    terms.append(f"{alias}.id ASC")
    return "ORDER BY " + ", ".join(terms), params


def _dimension_sql(f: DimensionFilter, alias: str, params: list[Any]) -> str | None:
    dim = (f.dimension or "").strip()
    if not dim or not f.values:
        return None
    low = dim.lower()
    options: list[str] = []
    if low == "stdtime":
        for v in f.values:
            lo, hi = v if isinstance(v, tuple) else (v, v)
            options.append(f"({alias}.time <= ? AND {alias}.time_end >= ?)")
            params += [hi, lo]
        return "(" + " OR ".join(options) + ")"
    if low == "stdz":
        for v in f.values:
            if isinstance(v, tuple):
                options.append(f"{alias}.std_z BETWEEN ? AND ?")
                params += [min(v), max(v)]
            else:
                options.append(f"{alias}.std_z = ?")
                params.append(v)
        return "(" + " OR ".join(options) + ")"
    params.append(dim)
    for v in f.values:
        if isinstance(v, tuple):
            options.append("d.value BETWEEN ? AND ?")
            params += [min(v), max(v)]
        else:
            options.append("d.value = ?")
            params.append(v)
    match = " OR ".join(options)
    return f"EXISTS (SELECT 1 FROM item_dims d WHERE d.item_id = {alias}.id AND d.name = ? AND ({match}))"


def dimensions_sql(
    filters: Sequence[DimensionFilter], alias: str = "i", dialect: Dialect = SQLITE
) -> tuple[str, list[Any]] | None:
    """SQL for multidimensional filters.

    Filters naming the same variable combine with AND, filters of different variables with
    OR (a definition may ask for slices of several variables); filters without a variable
    apply to every variable (AND). A dimension filter without values constrains nothing.
    """
    common = [f for f in filters if not (f.variable or "").strip()]
    groups: dict[str, list[DimensionFilter]] = {}
    for f in filters:
        name = (f.variable or "").strip()
        if name:
            groups.setdefault(name.casefold(), []).append(f)
    params: list[Any] = []
    ands: list[str] = []
    for f in common:
        sql = _dimension_sql(f, alias, params)
        if sql is not None:
            ands.append(sql)
    ors: list[str] = []
    for group in groups.values():
        parts = [dialect.equals_nocase(f"{alias}.variable")]
        params.append((group[0].variable or "").strip())
        for f in group:
            sql = _dimension_sql(f, alias, params)
            if sql is not None:
                parts.append(sql)
        ors.append("(" + " AND ".join(parts) + ")")
    if ors:
        ands.append("(" + " OR ".join(ors) + ")")
    if not ands:
        return None
    return "(" + " AND ".join(ands) + ")", params


# columns whose value lies inside an item's R*Tree time interval [t_min, t_max]
_RTREE_TIME_COLUMNS = frozenset({"time", "time_end"})
_FLIPPED: dict[str, str] = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}


def _number(e: Expr) -> float | None:
    if (
        isinstance(e, Literal_)
        and isinstance(e.value, int | float)
        and not isinstance(e.value, bool)
    ):
        try:
            value = float(e.value)
        except OverflowError:
            return None
        return value if math.isfinite(value) else None
    return None


def _time_column(e: Expr) -> bool:
    if not isinstance(e, Field):
        return False
    found = resolve_field(e.name)
    return found is not None and COLUMNS[found.name] in _RTREE_TIME_COLUMNS


def where_time_bounds(cond: Condition | None) -> tuple[float | None, float | None]:
    """Bounds a where clause sets on the time of every item it matches: ``(low, high)``.

    Only comparisons and BETWEENs of StdTime / AcquisitionDate / StdTimeEnd with numbers
    that the whole clause ANDs count; a matching item then has ``t_max >= low`` and
    ``t_min <= high`` in the R*Tree (None = no bound).
    """
    low: float | None = None
    high: float | None = None

    def visit(c: Condition) -> None:
        nonlocal low, high
        if isinstance(c, And):
            for part in c.parts:
                visit(part)
            return
        lo = hi = None
        if isinstance(c, Compare):
            op: str = c.op
            left, right = c.left, c.right
            if not _time_column(left):
                op, left, right = _FLIPPED[op], right, left
            value = _number(right)
            if not _time_column(left) or value is None:
                return
            if op in (">", ">=", "="):
                lo = value
            if op in ("<", "<=", "="):
                hi = value
        elif isinstance(c, Between) and not c.negated and _time_column(c.expr):
            lo, hi = _number(c.low), _number(c.high)
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)

    if cond is not None:
        visit(cond)
    return low, high


def _rtree_time_sql(query: ItemQuery, params: list[Any]) -> str:
    """R*Tree conditions on the time dimension from a query's time window and where clause."""
    low, high = where_time_bounds(query.where)
    if query.time is not None:
        t1, t2 = query.time
        if t1 is not None:
            low = float(t1) if low is None else max(low, float(t1))
        if t2 is not None:
            high = float(t2) if high is None else min(high, float(t2))
    conds = []
    if high is not None:
        conds.append(" AND r.t_min <= ?")
        params.append(high)
    if low is not None:
        conds.append(" AND r.t_max >= ?")
        params.append(low)
    return "".join(conds)


def item_query_sql(
    dataset_id: int, query: ItemQuery, max_duration: int = 0
) -> tuple[str, list[Any]]:
    """``FROM … WHERE …`` selecting a query's items, driven by the most selective index.

    Object ids drive a primary-key lookup, an extent the R*Tree (ids of one dataset only,
    narrowed by the time window and by time comparisons the where clause ANDs), a time window
    alone the (dataset, time) index, bounded below by the window start minus ``max_duration``
    (the longest item interval of the dataset). The R*Tree holds float32 bounds rounded
    outwards, so the exact conditions on ``i.*`` are always kept. Items without a time never
    match a time window.
    """
    q = query
    conds: list[str] = []
    params: list[Any] = []
    source = "items AS i"
    if q.extent is not None:
        e = q.extent
        if not e.is_valid():
            raise InvalidParameter("extent", f"{e} is not a valid rectangle.")
        if q.object_ids is None:
            source = "items_rtree AS r CROSS JOIN items AS i ON i.id = r.id"
            params += [e.xmax, e.xmin, e.ymax, e.ymin, dataset_id, dataset_id]
            conds.append(
                "r.xmin <= ? AND r.xmax >= ? AND r.ymin <= ? AND r.ymax >= ? "
                "AND r.ds_min <= ? AND r.ds_max >= ?" + _rtree_time_sql(q, params)
            )
        conds.append("i.xmin <= ? AND i.xmax >= ? AND i.ymin <= ? AND i.ymax >= ?")
        params += [e.xmax, e.xmin, e.ymax, e.ymin]
    elif q.object_ids is None and q.time is not None:
        # without this hint SQLite may walk the whole dataset in OBJECTID order to skip a sort
        source = "items AS i INDEXED BY items_time"
    conds.append("i.dataset_id = ?")
    params.append(dataset_id)
    if q.object_ids is not None:
        conds.append("i.id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([int(x) for x in q.object_ids]))
    if q.time is not None:
        t1, t2 = q.time
        if t2 is not None:
            conds.append("i.time <= ?")
            params.append(t2)
        if t1 is not None:
            conds.append("i.time_end >= ? AND i.time >= ?")
            params += [t1, t1 - max_duration]
        if t1 is None and t2 is None:
            conds.append("i.time IS NOT NULL")  # a time filter keeps only items with a time
    if q.where is not None:
        sql, where_params = compile_where(q.where)
        conds.append(sql)
        params += where_params
    dims = dimensions_sql(q.dimensions)
    if dims is not None:
        conds.append(dims[0])
        params += dims[1]
    if q.pixel_size is not None:
        conds.append("i.low_ps <= ? AND (i.max_ps <= 0 OR i.max_ps >= ?)")
        params += [q.pixel_size * 2.0, q.pixel_size]
    return f"FROM {source} WHERE " + " AND ".join(conds), params
