"""Parse and evaluate ArcGIS ``where`` clauses: the safe SQL subset of spec 6.3.

``parse_where`` turns client text into the :mod:`livemosaic.core.where_ast` tree with a
hand-written tokenizer and recursive-descent parser; nothing else is accepted, so client text
never reaches a database. ``evaluate`` applies a tree to an attribute dictionary with SQL
three-valued logic (a comparison with NULL is unknown, and unknown rows do not match).

Grammar (keywords case-insensitive)::

    condition := and_cond (OR and_cond)*
    and_cond  := not_cond (AND not_cond)*
    not_cond  := NOT not_cond | predicate
    predicate := "(" condition ")" | expr tail
    tail      := cmp_op expr | [NOT] IN "(" literal, … ")" | [NOT] BETWEEN expr AND expr
               | [NOT] LIKE 'pattern' [ESCAPE 'c'] | IS [NOT] NULL
    expr      := field | number | -number | 'string' | NULL | DATE 'd' | TIMESTAMP 'ts'
               | UPPER(expr) | LOWER(expr) | "(" expr ")"
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from livemosaic.core.fields import CATALOG_FIELDS, resolve_field
from livemosaic.core.models import MAX_CATALOG_INT
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
    Value,
)
from livemosaic.errors import InvalidParameter, LimitExceeded

PARAMETER = "where"
MAX_DEPTH = 50
MAX_IN_VALUES = 10000
ACCEPTED = (
    "a condition over the catalog fields such as "
    "\"Name LIKE 'T32%' AND AcquisitionDate >= DATE '2024-01-01'\", using = <> < <= > >=, "
    "AND, OR, NOT, parentheses, IN (…), BETWEEN, LIKE, IS [NOT] NULL, "
    "DATE 'yyyy-mm-dd', TIMESTAMP 'yyyy-mm-dd hh:mm:ss', UPPER() and LOWER()"
)

CompareOp = Literal["=", "<>", "<", "<=", ">", ">="]
_OPS = ("<=", ">=", "<>", "!=", "=", "<", ">")
_KEYWORDS = frozenset(
    {"AND", "OR", "NOT", "IN", "BETWEEN", "LIKE", "ESCAPE", "IS", "NULL", "SELECT", "FROM"}
    | {"UNION", "EXISTS", "CASE", "WHEN", "THEN", "ELSE", "END", "DATE", "TIMESTAMP"}
)
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMERIC_TYPES = frozenset(
    {"esriFieldTypeOID", "esriFieldTypeInteger", "esriFieldTypeDouble", "esriFieldTypeDate"}
)


def _error(reason: str) -> InvalidParameter:
    return InvalidParameter(PARAMETER, reason, accepted=ACCEPTED)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # num, str, ident, qident, op, ( ) , - end
    text: str  # raw text; the unescaped value for strings
    pos: int  # 1-based character position

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the clause"
        if self.kind == "str":
            return f"string '{self.text}'"
        return f"'{self.text}'"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "'":
            i = _read_string(text, i, tokens)
        elif c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise _error(f"unterminated quoted field name starting at position {i + 1}.")
            tokens.append(_Token("qident", text[i + 1 : end], i + 1))
            i = end + 1
        elif (m := _NUMBER.match(text, i)) is not None and (c.isdigit() or c == "."):
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] == "_"):
                raise _error(f"malformed number at position {i + 1}.")
            tokens.append(_Token("num", m.group(), i + 1))
            i = end
        elif (m := _IDENT.match(text, i)) is not None:
            tokens.append(_Token("ident", m.group(), i + 1))
            i = m.end()
        elif text.startswith("--", i) or text.startswith("/*", i):
            raise _error(f"comments are not allowed (position {i + 1}).")
        elif c == ";":
            raise _error(f"';' at position {i + 1}: only one condition is allowed.")
        elif c in "(),-":
            tokens.append(_Token(c, c, i + 1))
            i += 1
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                raise _error(f"unexpected character {c!r} at position {i + 1}.")
            tokens.append(_Token("op", op, i + 1))
            i += len(op)
    tokens.append(_Token("end", "", n + 1))
    return tokens


def _read_string(text: str, start: int, tokens: list[_Token]) -> int:
    buf: list[str] = []
    j = start + 1
    while True:
        end = text.find("'", j)
        if end < 0:
            raise _error(f"unterminated string starting at position {start + 1}.")
        buf.append(text[j:end])
        if text.startswith("''", end):
            buf.append("'")
            j = end + 2
            continue
        tokens.append(_Token("str", "".join(buf), start + 1))
        return end + 1


_ISO_DATE = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:(?:T|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_US_DATE = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)


def parse_date(text: str) -> int | None:
    """Epoch milliseconds (UTC) of a date or timestamp string, or None if it is not one.

    Accepts ``yyyy-mm-dd`` or ``yyyy/mm/dd`` with an optional `` hh:mm[:ss[.fff]]`` (or ISO
    ``T``, ``Z`` and ``+hh:mm``), and US ``mm/dd/yyyy [hh:mm[:ss] [AM|PM]]``. No zone = UTC.
    """
    s = text.strip()
    tz = dt.UTC
    if (m := _ISO_DATE.match(s)) is not None:
        y, mo, d, h, mi, sec, frac, zone = m.groups()
        micro = int((frac or "0").ljust(6, "0"))
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    elif (m := _US_DATE.match(s)) is not None:
        mo, d, y, h, mi, sec, ampm = m.groups()
        micro = 0
        if ampm and h is not None:
            hour = int(h) % 12 + (12 if ampm.upper() == "PM" else 0)
            h = str(hour)
    else:
        return None
    try:
        value = dt.datetime(
            int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), micro, tzinfo=tz
        )
    except ValueError:
        return None
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class _Bare:
    """An expression in parentheses not yet followed by its operator: ``(Name) = 'x'``."""

    expr: Expr
    pos: int


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "ident" and tok.text.upper() in words

    def expect(self, kind: str, what: str) -> _Token:
        tok = self.take()
        if tok.kind != kind:
            raise _error(f"expected {what} at position {tok.pos}, found {tok.describe()}.")
        return tok

    def expect_kw(self, word: str) -> None:
        if not self.at_kw(word):
            tok = self.peek()
            raise _error(f"expected {word} at position {tok.pos}, found {tok.describe()}.")
        self.take()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LimitExceeded(
                f"The where clause nests deeper than {MAX_DEPTH} levels.",
                next_step="Simplify the condition (fewer nested parentheses, NOT or functions).",
            )

    # -- conditions ----------------------------------------------------------------------
    def parse(self) -> Condition:
        cond = self.condition()
        tok = self.peek()
        if tok.kind != "end":
            raise _error(f"unexpected {tok.describe()} at position {tok.pos}.")
        return self.require(cond)

    def require(self, node: Condition | _Bare) -> Condition:
        if isinstance(node, _Bare):
            raise _error(
                f"expected a comparison (=, <>, <, <=, >, >=, IN, BETWEEN, LIKE, IS NULL) "
                f"after the expression at position {node.pos}."
            )
        return node

    def condition(self) -> Condition | _Bare:
        first = self.and_cond()
        if not self.at_kw("OR"):
            return first
        parts = [self.require(first)]
        while self.at_kw("OR"):
            self.take()
            parts.append(self.require(self.and_cond()))
        return _or(parts)

    def and_cond(self) -> Condition | _Bare:
        first = self.not_cond()
        if not self.at_kw("AND"):
            return first
        parts = [self.require(first)]
        while self.at_kw("AND"):
            self.take()
            parts.append(self.require(self.not_cond()))
        return _and(parts)

    def not_cond(self) -> Condition | _Bare:
        if self.at_kw("NOT"):
            self.take()
            self.enter()
            inner = self.require(self.not_cond())
            self.depth -= 1
            return _not(inner)
        return self.predicate()

    def predicate(self) -> Condition | _Bare:
        tok = self.peek()
        if tok.kind == "(":
            self.take()
            self.enter()
            inner = self.condition()
            self.expect(")", "')'")
            self.depth -= 1
            if isinstance(inner, _Bare):
                return self.tail(inner.expr, inner.pos)
            return inner
        return self.tail(self.expr(), tok.pos)

    def tail(self, left: Expr, pos: int) -> Condition | _Bare:
        tok = self.peek()
        negated = False
        if self.at_kw("NOT"):
            self.take()
            negated = True
            if not self.at_kw("IN", "BETWEEN", "LIKE"):
                nxt = self.peek()
                raise _error(
                    f"expected IN, BETWEEN or LIKE after NOT at position {nxt.pos}, "
                    f"found {nxt.describe()}."
                )
        if tok.kind == "op":
            self.take()
            op = cast(CompareOp, "<>" if tok.text == "!=" else tok.text)
            return _compare(op, left, self.expr())
        if self.at_kw("IN"):
            self.take()
            return In(left, self.in_list(left), negated)
        if self.at_kw("BETWEEN"):
            self.take()
            low = self.expr()
            self.expect_kw("AND")
            high = self.expr()
            return Between(left, _coerce(left, low), _coerce(left, high), negated)
        if self.at_kw("LIKE"):
            self.take()
            pattern = self.expect("str", "a quoted LIKE pattern").text
            escape = None
            if self.at_kw("ESCAPE"):
                self.take()
                esc = self.expect("str", "a quoted escape character")
                if len(esc.text) != 1:
                    raise _error(f"ESCAPE takes one character (position {esc.pos}).")
                escape = esc.text
            return Like(left, pattern, negated, escape)
        if self.at_kw("IS"):
            self.take()
            is_not = self.at_kw("NOT")
            if is_not:
                self.take()
            self.expect_kw("NULL")
            return IsNull(left, is_not)
        if tok.kind == ")":
            return _Bare(left, pos)
        raise _error(
            f"expected a comparison (=, <>, <, <=, >, >=, IN, BETWEEN, LIKE, IS NULL) at "
            f"position {tok.pos}, found {tok.describe()}."
        )

    def in_list(self, left: Expr) -> tuple[Literal_, ...]:
        self.expect("(", "'(' after IN")
        if self.at_kw("SELECT"):
            raise _error(f"subqueries are not supported (position {self.peek().pos}).")
        values: list[Literal_] = []
        while True:
            tok = self.peek()
            value = self.expr()
            if not isinstance(value, Literal_):
                raise _error(f"IN lists take literal values only (position {tok.pos}).")
            values.append(cast(Literal_, _coerce(left, value)))
            if len(values) > MAX_IN_VALUES:
                raise LimitExceeded(
                    f"The where clause IN list has more than {MAX_IN_VALUES} values.",
                    next_step="Split the request into several smaller queries.",
                )
            if self.peek().kind != ",":
                break
            self.take()
        self.expect(")", "',' or ')' in the IN list")
        return tuple(values)

    # -- expressions ---------------------------------------------------------------------
    def expr(self) -> Expr:
        tok = self.take()
        if tok.kind == "(":
            self.enter()
            inner = self.expr()
            self.expect(")", "')'")
            self.depth -= 1
            return inner
        if tok.kind == "-":
            num = self.expect("num", "a number after '-'")
            return Literal_(-_number(num))
        if tok.kind == "num":
            return Literal_(_number(tok))
        if tok.kind == "str":
            return Literal_(tok.text)
        if tok.kind == "qident":
            return _field(tok.text, tok.pos)
        if tok.kind != "ident":
            raise _error(
                f"expected a field name, number or quoted string at position {tok.pos}, "
                f"found {tok.describe()}."
            )
        word = tok.text.upper()
        if self.peek().kind == "(":
            return self.function(tok)
        if word == "NULL":
            return Literal_(None)
        if word in ("DATE", "TIMESTAMP") and self.peek().kind == "str":
            lit = self.take()
            ms = parse_date(lit.text)
            if ms is None:
                raise _error(f"{word} '{lit.text}' at position {lit.pos} is not a valid date.")
            return Literal_(ms)
        if word == "SELECT":
            raise _error(f"subqueries are not supported (position {tok.pos}).")
        if word in _KEYWORDS:
            raise _error(f"unexpected keyword {tok.text} at position {tok.pos}.")
        return _field(tok.text, tok.pos)

    def function(self, tok: _Token) -> Expr:
        word = tok.text.upper()
        if word not in ("UPPER", "LOWER"):
            raise _error(
                f"function {tok.text}() at position {tok.pos} is not supported; "
                "only UPPER() and LOWER() are."
            )
        self.take()  # "("
        self.enter()
        arg = self.expr()
        self.expect(")", f"')' closing {word}(")
        self.depth -= 1
        return Func(cast(Literal["UPPER", "LOWER"], word), arg)


def _number(tok: _Token) -> int | float:
    text = tok.text
    try:
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
    except (ValueError, OverflowError):
        value = math.inf
    if not _in_range(value):
        raise _error(
            f"number {text[:40]} at position {tok.pos} is out of range "
            f"(integers must lie within ±{MAX_CATALOG_INT}, decimals must be finite)."
        )
    return value


def _in_range(value: int | float) -> bool:
    """True for finite decimals and for integers the catalog can store (64-bit)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return -MAX_CATALOG_INT <= value <= MAX_CATALOG_INT


def _field(name: str, pos: int) -> Field:
    found = resolve_field(name)
    if found is None:
        valid = ", ".join(f.name for f in CATALOG_FIELDS)
        raise _error(f"unknown field '{name}' at position {pos}; valid fields are {valid}.")
    return Field(found.name)


def _field_type(expr: Expr) -> str | None:
    if isinstance(expr, Field):
        found = resolve_field(expr.name)
        return found.type if found is not None else None
    if isinstance(expr, Func):
        return "esriFieldTypeString"
    return None


def _coerce(target: Expr, value: Expr) -> Expr:
    """Make a literal fit the type of the field it is compared with."""
    ftype = _field_type(target)
    if ftype is None or not isinstance(value, Literal_) or value.value is None:
        return value
    raw = value.value
    name = f"{target.name}()" if isinstance(target, Func) else getattr(target, "name", "")
    if ftype == "esriFieldTypeDate" and isinstance(raw, str):
        ms = parse_date(raw)
        if ms is None:
            raise _error(f"'{raw}' is not a date for field {name}; use DATE 'yyyy-mm-dd'.")
        return Literal_(ms)
    if ftype in _NUMERIC_TYPES and isinstance(raw, str):
        try:
            num = float(raw)
        except ValueError:
            raise _error(f"{name} holds numbers; '{raw[:40]}' is not a number.") from None
        coerced: int | float = int(num) if num.is_integer() and "." not in raw else num
        if not _in_range(coerced):
            raise _error(f"'{raw[:40]}' is out of range for {name}.")
        return Literal_(coerced)
    if ftype == "esriFieldTypeString" and not isinstance(raw, str):
        raise _error(f"{name} holds text; put {raw} in single quotes.")
    return value


def _compare(op: CompareOp, left: Expr, right: Expr) -> Condition:
    left, right = _coerce(right, left), _coerce(left, right)
    if isinstance(left, Literal_) and isinstance(right, Literal_):
        truth = _compare_values(op, left.value, right.value)
        if truth is not None:
            return Const(truth)
    return Compare(op, left, right)


def _and(parts: Sequence[Condition]) -> Condition:
    kept: list[Condition] = []
    for p in parts:
        if isinstance(p, Const):
            if not p.value:
                return Const(False)
            continue
        kept.extend(p.parts if isinstance(p, And) else (p,))
    if not kept:
        return Const(True)
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def _or(parts: Sequence[Condition]) -> Condition:
    kept: list[Condition] = []
    for p in parts:
        if isinstance(p, Const):
            if p.value:
                return Const(True)
            continue
        kept.extend(p.parts if isinstance(p, Or) else (p,))
    if not kept:
        return Const(False)
    return kept[0] if len(kept) == 1 else Or(tuple(kept))


def _not(part: Condition) -> Condition:
    if isinstance(part, Const):
        return Const(not part.value)
    return Not(part)


def parse_where(text: str | None, *, max_length: int = 20000) -> Condition | None:
    """The condition tree of an ArcGIS where clause; None when it matches everything."""
    if text is None or not text.strip():
        return None
    if len(text) > max_length:
        raise LimitExceeded(
            f"The where clause has {len(text)} characters; the limit is {max_length}.",
            next_step="Shorten the condition or split the request.",
        )
    cond = _Parser(_tokenize(text)).parse()
    if isinstance(cond, Const) and cond.value:
        return None
    return cond


# -- evaluation --------------------------------------------------------------------------


def _sort_key(value: Value) -> tuple[int, Any]:
    # SQLite orders numbers before text; the same rule keeps mixed comparisons consistent.
    if isinstance(value, str):
        return (1, value)
    return (0, value)


def _compare_values(op: str, a: Value, b: Value) -> bool | None:
    if a is None or b is None:
        return None
    ka, kb = _sort_key(a), _sort_key(b)
    if op == "=":
        return ka == kb
    if op == "<>":
        return ka != kb
    if op == "<":
        return ka < kb
    if op == "<=":
        return ka <= kb
    if op == ">":
        return ka > kb
    return ka >= kb


def _value(expr: Expr, attributes: Mapping[str, Any]) -> Value:
    if isinstance(expr, Literal_):
        return expr.value
    if isinstance(expr, Field):
        raw = attributes.get(expr.name)
        if raw is None or isinstance(raw, str):
            return raw
        if isinstance(raw, bool):
            return int(raw)
        if isinstance(raw, int | float):
            return None if isinstance(raw, float) and math.isnan(raw) else raw
        return str(raw)
    inner = _value(expr.arg, attributes)
    if inner is None:
        return None
    text = _as_text(inner)
    return text.upper() if expr.name == "UPPER" else text.lower()


def _as_text(value: str | int | float) -> str:
    return value if isinstance(value, str) else repr(value)


@functools.lru_cache(maxsize=256)
def like_regex(pattern: str, escape: str | None = None) -> re.Pattern[str]:
    """The regular expression of a LIKE pattern (ASCII case-insensitive, like SQLite)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if escape is not None and c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.ASCII | re.IGNORECASE | re.DOTALL)


def _truth(cond: Condition, attributes: Mapping[str, Any]) -> bool | None:
    if isinstance(cond, Const):
        return cond.value
    if isinstance(cond, And | Or):
        stop = isinstance(cond, Or)  # the value that decides the result
        result: bool | None = not stop
        for part in cond.parts:
            t = _truth(part, attributes)
            if t is stop:
                return stop
            if t is None:
                result = None
        return result
    if isinstance(cond, Not):
        t = _truth(cond.part, attributes)
        return None if t is None else not t
    if isinstance(cond, Compare):
        return _compare_values(
            cond.op, _value(cond.left, attributes), _value(cond.right, attributes)
        )
    if isinstance(cond, IsNull):
        return (_value(cond.expr, attributes) is None) != cond.negated
    value = _value(cond.expr, attributes)
    if value is None:
        return None
    result = None
    if isinstance(cond, In):
        if any(_compare_values("=", value, v.value) for v in cond.values):
            result = True
        elif all(v.value is not None for v in cond.values):
            result = False
    elif isinstance(cond, Between):
        low = _compare_values(">=", value, _value(cond.low, attributes))
        high = _compare_values("<=", value, _value(cond.high, attributes))
        result = _truth_and(low, high)
    else:
        result = like_regex(cond.pattern, cond.escape).fullmatch(_as_text(value)) is not None
    return None if result is None else result != cond.negated


def _truth_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def evaluate(cond: Condition | None, attributes: Mapping[str, Any]) -> bool:
    """True when the attributes satisfy the condition (None matches everything)."""
    if cond is None:
        return True
    return _truth(cond, attributes) is True


__all__ = ["MAX_DEPTH", "MAX_IN_VALUES", "evaluate", "like_regex", "parse_date", "parse_where"]
