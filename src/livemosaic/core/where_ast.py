"""The parsed form of an ArcGIS ``where`` clause (a safe SQL subset).

``core.where.parse_where`` builds these nodes from client text; catalog stores compile them
to parameterised SQL (no client text ever reaches SQL) and ``core.where.evaluate`` applies
them to attribute dictionaries. Field names are resolved case-insensitively against the
catalog fields before a node is built, so ``Field.name`` is always a canonical field name.
Date literals are epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Value = str | int | float | None


@dataclass(frozen=True, slots=True)
class Field:
    """A catalog field, by canonical name (e.g. ``OBJECTID``, ``StdTime``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Literal_:
    """A number, string, date (epoch ms) or NULL."""

    value: Value


@dataclass(frozen=True, slots=True)
class Func:
    """``UPPER(expr)`` or ``LOWER(expr)``."""

    name: Literal["UPPER", "LOWER"]
    arg: Expr


Expr = Field | Literal_ | Func


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right`` with op one of = <> < <= > >=."""

    op: Literal["=", "<>", "<", "<=", ">", ">="]
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class In:
    """``expr [NOT] IN (v1, v2, …)``."""

    expr: Expr
    values: tuple[Literal_, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Between:
    """``expr [NOT] BETWEEN low AND high``."""

    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Like:
    """``expr [NOT] LIKE 'pattern' [ESCAPE 'c']`` with % and _ wildcards."""

    expr: Expr
    pattern: str
    negated: bool = False
    escape: str | None = None  # one character that makes the next % or _ literal


@dataclass(frozen=True, slots=True)
class IsNull:
    """``expr IS [NOT] NULL``."""

    expr: Expr
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more conditions."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more conditions."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """Negation."""

    part: Condition


@dataclass(frozen=True, slots=True)
class Const:
    """A constant truth value: ``1=1`` parses to Const(True)."""

    value: bool


Condition = Compare | In | Between | Like | IsNull | And | Or | Not | Const
