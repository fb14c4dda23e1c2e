"""The where-clause parser and evaluator (spec 6.3 SQL subset)."""

from __future__ import annotations

import pytest

from livemosaic.core.where import MAX_DEPTH, evaluate, like_regex, parse_date, parse_where
from livemosaic.core.where_ast import (
    And,
    Between,
    Compare,
    Const,
    Field,
    Func,
    In,
    IsNull,
    Like,
    Literal_,
    Not,
    Or,
)
from livemosaic.errors import InvalidParameter, LimitExceeded

DAY_2013_09_14 = 1379116800000


def F(name: str) -> Field:
    return Field(name)


def L(value: object) -> Literal_:
    return Literal_(value)  # type: ignore[arg-type]  # tests pass plain values


# -- positive cases --------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "1=1", "1 = 1", "(1=1)", "1=1 AND 2=2"])
def test_match_everything_is_none(text: str | None) -> None:
    assert parse_where(text) is None


@pytest.mark.parametrize("text", ["1=0", "1 <> 1", "NOT 1=1", "1=0 AND Name='a'"])
def test_constant_false(text: str) -> None:
    assert parse_where(text) == Const(False)


def test_constant_or_true_swallows_the_rest() -> None:
    assert parse_where("Name = 'a' OR 1=1") is None


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("OBJECTID = 5", "="),
        ("OBJECTID <> 5", "<>"),
        ("OBJECTID != 5", "<>"),
        ("OBJECTID < 5", "<"),
        ("OBJECTID <= 5", "<="),
        ("OBJECTID > 5", ">"),
        ("OBJECTID >= 5", ">="),
    ],
)
def test_comparison_operators(text: str, op: str) -> None:
    assert parse_where(text) == Compare(op, F("OBJECTID"), L(5))  # type: ignore[arg-type]


def test_field_names_are_case_insensitive_and_canonical() -> None:
    assert parse_where("objectid = 1") == Compare("=", F("OBJECTID"), L(1))
    assert parse_where('"lowps" >= 2.5') == Compare(">=", F("LowPS"), L(2.5))
    assert parse_where("shape_AREA > 1e3") == Compare(">", F("Shape_Area"), L(1000.0))


def test_keywords_are_case_insensitive() -> None:
    a = parse_where("Name like 'a%' and not StdZ is null or OBJECTID between 1 and 3")
    b = parse_where("Name LIKE 'a%' AND NOT StdZ IS NULL OR OBJECTID BETWEEN 1 AND 3")
    assert a == b
    assert isinstance(a, Or)


def test_precedence_not_and_or() -> None:
    cond = parse_where("OBJECTID = 1 OR OBJECTID = 2 AND NOT OBJECTID = 3")
    assert cond == Or(
        (
            Compare("=", F("OBJECTID"), L(1)),
            And(
                (
                    Compare("=", F("OBJECTID"), L(2)),
                    Not(Compare("=", F("OBJECTID"), L(3))),
                )
            ),
        )
    )


def test_parentheses_override_precedence() -> None:
    cond = parse_where("(OBJECTID = 1 OR OBJECTID = 2) AND Name = 'x'")
    assert isinstance(cond, And)
    assert isinstance(cond.parts[0], Or)


def test_parenthesised_expression_before_operator() -> None:
    assert parse_where("(Name) = 'x'") == Compare("=", F("Name"), L("x"))
    assert parse_where("((OBJECTID)) IN (1)") == In(F("OBJECTID"), (L(1),))


def test_in_list_like_the_python_api_pages() -> None:
    cond = parse_where("OBJECTID in (1,2,3)")
    assert cond == In(F("OBJECTID"), (L(1), L(2), L(3)))
    assert parse_where("Name NOT IN ('a', 'b')") == In(F("Name"), (L("a"), L("b")), True)


def test_long_in_list_is_accepted() -> None:
    text = "OBJECTID IN (" + ",".join(str(i) for i in range(5000)) + ")"
    cond = parse_where(text, max_length=100000)
    assert isinstance(cond, In)
    assert len(cond.values) == 5000


def test_between_and_not_between() -> None:
    assert parse_where("StdZ BETWEEN -10 AND 0") == Between(F("StdZ"), L(-10), L(0))
    assert parse_where("StdZ NOT BETWEEN -10.5 AND 0") == Between(
        F("StdZ"), L(-10.5), L(0), negated=True
    )


def test_like_with_escape() -> None:
    assert parse_where("Name LIKE 'T32%'") == Like(F("Name"), "T32%")
    assert parse_where("Name NOT LIKE 'a!_%' ESCAPE '!'") == Like(F("Name"), "a!_%", True, "!")


def test_is_null_and_is_not_null() -> None:
    assert parse_where("StdZ IS NULL") == IsNull(F("StdZ"))
    assert parse_where("StdZ IS NOT NULL") == IsNull(F("StdZ"), negated=True)


def test_strings_with_doubled_quotes() -> None:
    assert parse_where("Name = 'it''s'") == Compare("=", F("Name"), L("it's"))
    assert parse_where("Name = ''") == Compare("=", F("Name"), L(""))


def test_upper_and_lower() -> None:
    assert parse_where("UPPER(Name) = 'ABC'") == Compare("=", Func("UPPER", F("Name")), L("ABC"))
    assert parse_where("lower(name) LIKE 'abc%'") == Like(Func("LOWER", F("Name")), "abc%")


@pytest.mark.parametrize(
    "text",
    [
        "AcquisitionDate > DATE '2013-09-14'",
        "AcquisitionDate > date '2013-09-14 00:00:00'",
        "AcquisitionDate > TIMESTAMP '2013-09-14 00:00:00'",
        "AcquisitionDate > '2013-09-14'",
        "AcquisitionDate > '2013/09/14'",
        "AcquisitionDate > '09/14/2013'",
        "AcquisitionDate > '2013-09-14T00:00:00Z'",
    ],
)
def test_dates_become_epoch_ms(text: str) -> None:
    assert parse_where(text) == Compare(">", F("AcquisitionDate"), L(DAY_2013_09_14))


def test_date_string_in_between_and_in_lists() -> None:
    cond = parse_where("StdTime BETWEEN '2013-09-14' AND '2013-09-15'")
    assert cond == Between(F("StdTime"), L(DAY_2013_09_14), L(DAY_2013_09_14 + 86_400_000))
    cond = parse_where("StdTime IN ('2013-09-14', DATE '2013-09-15')")
    assert cond == In(F("StdTime"), (L(DAY_2013_09_14), L(DAY_2013_09_14 + 86_400_000)))


def test_parse_date_forms() -> None:
    assert parse_date("2013-09-14 01:02:03") == DAY_2013_09_14 + 3_723_000
    assert parse_date("2013-09-14 01:02:03.5") == DAY_2013_09_14 + 3_723_500
    assert parse_date("2013-09-14T02:00:00+01:00") == DAY_2013_09_14 + 3_600_000
    assert parse_date("09/14/2013 01:00:00 PM") == DAY_2013_09_14 + 13 * 3_600_000
    assert parse_date("1969-12-31") == -86_400_000
    assert parse_date("2013-02-30") is None
    assert parse_date("yesterday") is None


def test_numeric_string_for_numeric_field_becomes_a_number() -> None:
    assert parse_where("OBJECTID = '7'") == Compare("=", F("OBJECTID"), L(7))


def test_literal_on_the_left() -> None:
    assert parse_where("5 < OBJECTID") == Compare("<", L(5), F("OBJECTID"))


def test_nested_not_and_negative_numbers() -> None:
    assert parse_where("NOT NOT StdZ = -5") == Not(Not(Compare("=", F("StdZ"), L(-5))))


# -- rejections ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1=1; DROP TABLE items", "';'"),
        ("Name = 'a' OR 1=1 --", "comments"),
        ("Name = 'a' /* x */", "comments"),
        ("OBJECTID IN (SELECT id FROM items)", "subqueries"),
        ("OBJECTID = (SELECT 1)", "subqueries"),
        ("EXISTS (SELECT 1)", "EXISTS"),
        ("SUBSTR(Name, 1, 2) = 'ab'", "SUBSTR()"),
        ("sqlite_version() = '3'", "not supported"),
        ("Bogus = 1", "unknown field 'Bogus'"),
        ("Name = 'unterminated", "unterminated string"),
        ('"Name = 1', "unterminated quoted field"),
        ("Name =", "expected a field name"),
        ("Name", "expected a comparison"),
        ("(Name)", "expected a comparison"),
        ("Name = 'a' AND", "expected a field name"),
        ("Name = 'a' Name = 'b'", "unexpected"),
        ("OBJECTID IN ()", "expected a field name"),
        ("OBJECTID IN (Name)", "literal values"),
        ("OBJECTID = 1 UNION SELECT 1", "unexpected"),
        ("Name LIKE 5", "quoted LIKE pattern"),
        ("Name LIKE 'a' ESCAPE 'ab'", "one character"),
        ("Name NOT = 'a'", "IN, BETWEEN or LIKE after NOT"),
        ("OBJECTID = 1abc", "malformed number"),
        ("Name = 5", "holds text"),
        ("OBJECTID = 'seven'", "not a number"),
        ("AcquisitionDate > 'soon'", "not a date"),
        ("AcquisitionDate > DATE '2013-13-01'", "not a valid date"),
        ("OBJECTID = 1e999", "out of range"),
        ("Name = 'a' & 1", "unexpected character"),
        ("(OBJECTID = 1", "')'"),
        ("OBJECTID = 1)", "unexpected"),
        ("Name IS 'a'", "expected NULL"),
    ],
)
def test_rejected(text: str, fragment: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_where(text)
    assert info.value.parameter == "where"
    assert fragment in str(info.value)
    assert "Invalid value for 'where'" in str(info.value)


def test_error_names_the_position() -> None:
    with pytest.raises(InvalidParameter, match="position 4"):
        parse_where("1=1; DROP TABLE items")


def test_unknown_field_lists_valid_fields() -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_where("CloudCover < 20")
    text = str(info.value)
    assert "CloudCover" in text
    assert "OBJECTID" in text and "AcquisitionDate" in text and "StdZ" in text


def test_overlong_text_is_a_limit() -> None:
    with pytest.raises(LimitExceeded):
        parse_where("OBJECTID = 1 OR " * 100 + "OBJECTID = 2", max_length=200)


def test_nesting_depth_is_limited() -> None:
    ok = "(" * (MAX_DEPTH - 1) + "OBJECTID = 1" + ")" * (MAX_DEPTH - 1)
    assert parse_where(ok) == Compare("=", F("OBJECTID"), L(1))
    deep = "(" * (MAX_DEPTH + 5) + "OBJECTID = 1" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(LimitExceeded):
        parse_where(deep)
    with pytest.raises(LimitExceeded):
        parse_where("NOT " * (MAX_DEPTH + 1) + "OBJECTID = 1")


def test_in_list_length_is_limited() -> None:
    text = "OBJECTID IN (" + ",".join("1" for _ in range(10001)) + ")"
    with pytest.raises(LimitExceeded):
        parse_where(text, max_length=100000)


# -- evaluation ------------------------------------------------------------------------

ROW = {
    "OBJECTID": 7,
    "Name": "T32TNR_20240912",
    "LowPS": 10.0,
    "StdZ": None,
    "AcquisitionDate": DAY_2013_09_14,
    "Variable": "temp",
    "Tag": "50%_done",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OBJECTID = 7", True),
        ("OBJECTID <> 7", False),
        ("OBJECTID > 6.5", True),
        ("OBJECTID IN (1, 7)", True),
        ("OBJECTID NOT IN (1, 7)", False),
        ("OBJECTID BETWEEN 7 AND 8", True),
        ("OBJECTID NOT BETWEEN 7 AND 8", False),
        ("Name LIKE 't32%'", True),  # LIKE ignores ASCII case, as SQLite does
        ("Name LIKE 'T32_NR%'", True),
        ("Name LIKE 'T32'", False),
        ("Name NOT LIKE '%2024%'", False),
        ("Tag LIKE '50!%%' ESCAPE '!'", True),
        ("Tag LIKE '5!_%' ESCAPE '!'", False),
        ("Name = 't32tnr_20240912'", False),  # = is case-sensitive
        ("UPPER(Variable) = 'TEMP'", True),
        ("LOWER(Name) = 't32tnr_20240912'", True),
        ("AcquisitionDate >= DATE '2013-09-14'", True),
        ("AcquisitionDate > '2013/09/14'", False),
        ("StdZ IS NULL", True),
        ("StdZ IS NOT NULL", False),
        ("StdZ = 0", False),
        ("NOT StdZ = 0", False),  # NOT unknown is unknown
        ("StdZ <> 0", False),
        ("StdZ = 0 OR OBJECTID = 7", True),
        ("StdZ = 0 AND OBJECTID = 7", False),
        ("NOT (StdZ = 0 AND OBJECTID = 8)", True),  # unknown AND false is false
        ("StdZ IN (0, 1)", False),
        ("OBJECTID IN (1, NULL)", False),
        ("NOT OBJECTID IN (1, NULL)", False),  # 7 IN (1, NULL) is unknown
        ("OBJECTID IN (7, NULL)", True),
        ("StdZ BETWEEN 0 AND 1", False),
        ("OBJECTID BETWEEN NULL AND 5", False),  # unknown AND false
        ("NOT OBJECTID BETWEEN NULL AND 5", True),
        ("ZOrder IS NULL", True),  # missing keys are NULL
    ],
)
def test_evaluate(text: str, expected: bool) -> None:
    assert evaluate(parse_where(text), ROW) is expected


def test_evaluate_none_matches_everything() -> None:
    assert evaluate(None, {}) is True
    assert evaluate(Const(False), ROW) is False


def test_evaluate_nan_is_null() -> None:
    row = {"StdZ": float("nan")}
    assert evaluate(parse_where("StdZ IS NULL"), row) is True
    assert evaluate(parse_where("StdZ = 0"), row) is False


def test_like_regex_is_anchored_and_ascii_case_insensitive() -> None:
    assert like_regex("a%").fullmatch("ABC")
    assert not like_regex("a%").fullmatch("bA")
    assert like_regex("a.c").fullmatch("a.c")
    assert not like_regex("a.c").fullmatch("abc")
    assert not like_regex("é").fullmatch("É")  # like SQLite: only ASCII folds
