"""Acquisition times from file names and TIFF tags, as epoch milliseconds (UTC).

A *time pattern* is either a regular expression with named groups ``Y`` (year), ``m``
(month), ``d`` (day), optionally ``H``, ``M``, ``S`` and ``j`` (day of year, instead of m/d),
or a strftime-like pattern such as ``%Y-%m-%d`` or ``NDVI_%Y%j`` which is converted to such a
regex. Patterns are searched in the file name first, then in the whole path (so dates in
folder names such as ``2024/05/01`` work with a pattern like ``%Y/%m/%d``).

Without a configured pattern, :data:`DEFAULT_PATTERNS` find ``YYYY-MM-DD``, ``YYYY_MM_DD``,
``YYYYMMDD`` (optionally followed by ``THHMM[SS]`` / ``_HHMM[SS]`` / ``THH:MM[:SS]``) and the
MODIS ``.AYYYYDDD.`` form.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import re
from functools import lru_cache

from livemosaic.core.where import parse_date
from livemosaic.errors import InvalidParameter

_STRFTIME = {
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d{2})",
    "m": r"(?P<m>\d{2})",
    "d": r"(?P<d>\d{2})",
    "j": r"(?P<j>\d{3})",
    "H": r"(?P<H>\d{2})",
    "M": r"(?P<M>\d{2})",
    "S": r"(?P<S>\d{2})",
    "%": "%",
}

DEFAULT_PATTERNS: tuple[str, ...] = (
    r"(?<!\d)(?P<Y>(?:19|20|21)\d{2})(?P<sep>[-_.]?)(?P<m>0[1-9]|1[0-2])(?P=sep)"
    r"(?P<d>0[1-9]|[12]\d|3[01])"
    r"(?:[T_ -]?(?P<H>[01]\d|2[0-3]):?(?P<M>[0-5]\d)(?::?(?P<S>[0-5]\d))?)?(?!\d)",
    r"\.A(?P<Y>(?:19|20|21)\d{2})(?P<j>[0-3]\d{2})(?!\d)",
)

_TIFF_DATETIME = re.compile(
    r"^\s*(?P<Y>\d{4})[:/-](?P<m>\d{2})[:/-](?P<d>\d{2})"
    r"(?:[ T](?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
)


def strftime_to_regex(pattern: str) -> str:
    """Convert a strftime-like pattern (``%Y-%m-%d``) to a regex with named groups."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            if code not in _STRFTIME:
                raise InvalidParameter(
                    "time_pattern",
                    f"unsupported directive %{code}.",
                    accepted="%Y %y %m %d %j %H %M %S, or a regex with named groups Y m d H M S",
                )
            out.append(_STRFTIME[code])
            i += 2
            continue
        out.append(re.escape(ch))
        i += 1
    return "".join(out)


@lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a regex or strftime-like time pattern (InvalidParameter when malformed)."""
    source = pattern
    if "%" in pattern and "(?P<" not in pattern:
        source = strftime_to_regex(pattern)
    try:
        rx = re.compile(source)
    except re.error as exc:
        raise InvalidParameter(
            "time_pattern", f"not a valid regular expression ({exc}).", accepted="e.g. %Y-%m-%d"
        ) from exc
    groups = set(rx.groupindex)
    if not ({"Y", "y"} & groups) or not ({"m", "d"} <= groups or "j" in groups):
        raise InvalidParameter(
            "time_pattern",
            "the pattern must capture a year (Y) and month and day (m, d) or day of year (j).",
            accepted="a regex with named groups Y, m, d (optional H, M, S) or %Y-%m-%d",
        )
    return rx


def _from_groups(g: dict[str, str | None]) -> int | None:
    try:
        if g.get("Y"):
            year = int(g["Y"] or 0)
        else:
            yy = int(g.get("y") or 0)
            year = 2000 + yy if yy < 70 else 1900 + yy
        hour, minute = int(g.get("H") or 0), int(g.get("M") or 0)
        second = int(g.get("S") or 0)
        if g.get("j"):
            base = dt.datetime(year, 1, 1, hour, minute, second, tzinfo=dt.UTC)
            when = base + dt.timedelta(days=int(g["j"] or 1) - 1)
            if when.year != year:
                return None
        else:
            when = dt.datetime(
                year, int(g["m"] or 0), int(g["d"] or 0), hour, minute, second, tzinfo=dt.UTC
            )
    except (TypeError, ValueError):
        return None
    return calendar.timegm(when.timetuple()) * 1000


def time_from_name(path: str, pattern: str | None) -> int | None:
    """Epoch ms from a file name with ``pattern`` (or the default patterns when None)."""
    patterns = [compile_pattern(pattern)] if pattern else [re.compile(p) for p in DEFAULT_PATTERNS]
    name = os.path.basename(path)
    for text in (name, path) if pattern else (name,):
        for rx in patterns:
            for match in rx.finditer(text):
                value = _from_groups(match.groupdict())
                if value is not None:
                    return value
    return None


def time_from_tiff_tag(value: str | None) -> int | None:
    """Epoch ms from a TIFFTAG_DATETIME value ("YYYY:MM:DD HH:MM:SS"), read as UTC."""
    if not value:
        return None
    match = _TIFF_DATETIME.match(value)
    if match is None:
        return None
    return _from_groups(match.groupdict())


def iso(ms: int) -> str:
    """ISO 8601 text (seconds precision, no zone suffix) of an epoch-ms instant."""
    when = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def time_from_text(value: str | None, fmt: str | None = None) -> int | None:
    """Epoch ms of a metadata value: with ``fmt`` (strftime, ``%z`` for an offset) exactly;
    without, any date form of the REST API (ISO 8601 with ``Z`` or an offset, …) or a TIFF
    ``YYYY:MM:DD HH:MM:SS``. A value without a zone is UTC; None when it is not a date."""
    if not value:
        return None
    text = value.strip()
    if fmt:
        try:
            when = dt.datetime.strptime(text, fmt)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    parsed = parse_date(text.removesuffix("UTC").strip())  # "… 10:30:00 UTC" is UTC too
    return parsed if parsed is not None else time_from_tiff_tag(text)
