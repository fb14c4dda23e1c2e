"""Decode CF time coordinates (``<unit> since <reference>`` plus a calendar) to epoch ms.

No cftime/netCDF4 dependency: the calendars are simple arithmetic.

* ``standard``/``gregorian`` (mixed Julian/Gregorian), ``proleptic_gregorian`` and ``julian``
  are real timelines: the reference date is turned into a day number in its calendar and the
  offset is added, which is exact.
* ``noleap``/``365_day``, ``all_leap``/``366_day`` and ``360_day`` are model calendars: the
  offset is added inside the model calendar and the resulting date *label* is read as a
  Gregorian UTC date; days that do not exist there (30 February) are clamped to the month's
  last day.
* ``months``/``years``: 30/360 days in a 360-day calendar; otherwise whole values are calendar
  months/years added to the reference date and fractional ones use the UDUNITS lengths
  (year = 365.242198781 days, month = year / 12).

Unknown calendars and malformed units raise :class:`CFTimeError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MS_PER_DAY = 86_400_000
_UNIX_EPOCH_JDN = 2_440_588  # Julian day number of 1970-01-01 (Gregorian)

_UNIT_DAYS: dict[str, float] = {
    "microseconds": 1e-6 / 86400,
    "microsecond": 1e-6 / 86400,
    "us": 1e-6 / 86400,
    "milliseconds": 1e-3 / 86400,
    "millisecond": 1e-3 / 86400,
    "msec": 1e-3 / 86400,
    "msecs": 1e-3 / 86400,
    "ms": 1e-3 / 86400,
    "seconds": 1 / 86400,
    "second": 1 / 86400,
    "secs": 1 / 86400,
    "sec": 1 / 86400,
    "s": 1 / 86400,
    "minutes": 1 / 1440,
    "minute": 1 / 1440,
    "mins": 1 / 1440,
    "min": 1 / 1440,
    "hours": 1 / 24,
    "hour": 1 / 24,
    "hrs": 1 / 24,
    "hr": 1 / 24,
    "h": 1 / 24,
    "days": 1.0,
    "day": 1.0,
    "d": 1.0,
    "weeks": 7.0,
    "week": 7.0,
}
_MONTH_UNITS = {"months", "month"}
_YEAR_UNITS = {"years", "year", "yr", "yrs", "common_years"}
_UDUNITS_YEAR_DAYS = 365.242198781

CALENDARS = {
    "standard": "standard",
    "gregorian": "standard",
    "proleptic_gregorian": "proleptic_gregorian",
    "julian": "julian",
    "noleap": "noleap",
    "365_day": "noleap",
    "all_leap": "all_leap",
    "366_day": "all_leap",
    "360_day": "360_day",
}

_REF = re.compile(
    r"^\s*(?P<Y>[+-]?\d{1,4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T\s]+(?P<H>\d{1,2}):(?P<M>\d{1,2})(?::(?P<S>\d{1,2}(?:\.\d*)?))?)?"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)
_NOLEAP_CUM = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)
_LEAP_CUM = (0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366)


class CFTimeError(ValueError):
    """CF time units or calendar that cannot be decoded."""


@dataclass(frozen=True, slots=True)
class CFTimeUnits:
    """Parsed ``<unit> since <reference>`` with a calendar."""

    unit: str
    year: int
    month: int
    day: int
    seconds: float  # seconds into the reference day (time zone already applied)
    calendar: str

    def to_epoch_ms(self, value: float) -> int:
        """The instant (epoch ms, UTC) of a coordinate value."""
        if not math.isfinite(value):
            raise CFTimeError(f"time value {value!r} is not a finite number")
        if self.unit in _MONTH_UNITS or self.unit in _YEAR_UNITS:
            return self._calendar_step(value)
        days = value * _UNIT_DAYS[self.unit] + self.seconds / 86400.0
        return self._add_days(self.year, self.month, self.day, days)

    def _calendar_step(self, value: float) -> int:
        months = value * (12.0 if self.unit in _YEAR_UNITS else 1.0)
        if self.calendar == "360_day":
            return self._add_days(
                self.year, self.month, self.day, months * 30 + self.seconds / 86400
            )
        if float(months).is_integer():
            total = self.year * 12 + (self.month - 1) + int(months)
            y, m = divmod(total, 12)
            d = min(self.day, _days_in_month(y, m + 1, self.calendar))
            return self._add_days(y, m + 1, d, self.seconds / 86400.0)
        days = months * _UDUNITS_YEAR_DAYS / 12.0 + self.seconds / 86400.0
        return self._add_days(self.year, self.month, self.day, days)

    def _add_days(self, y: int, m: int, d: int, days: float) -> int:
        cal = self.calendar
        if cal in ("standard", "proleptic_gregorian", "julian"):
            julian = cal == "julian" or (cal == "standard" and (y, m, d) < (1582, 10, 15))
            jdn = _jdn_julian(y, m, d) if julian else _jdn_gregorian(y, m, d)
            return round((jdn - _UNIX_EPOCH_JDN + days) * MS_PER_DAY)
        count = _model_day_count(y, m, d, cal) + days
        whole = math.floor(count)
        frac = count - whole
        yy, mm, dd = _model_date(whole, cal)
        dd = min(dd, _days_in_month(yy, mm, "proleptic_gregorian"))
        jdn = _jdn_gregorian(yy, mm, dd)
        return round((jdn - _UNIX_EPOCH_JDN + frac) * MS_PER_DAY)


def parse_units(units: str, calendar: str | None = None) -> CFTimeUnits:
    """Parse CF time units (``days since 1950-01-01``) and a calendar name."""
    text = (units or "").strip()
    head, sep, ref = text.partition(" since ")
    if not sep:
        raise CFTimeError(f"time units {units!r} are not of the form '<unit> since <date>'")
    unit = head.strip().lower()
    if unit not in _UNIT_DAYS and unit not in _MONTH_UNITS and unit not in _YEAR_UNITS:
        raise CFTimeError(f"unknown time unit {head.strip()!r} in {units!r}")
    cal_name = (calendar or "standard").strip().lower() or "standard"
    cal = CALENDARS.get(cal_name)
    if cal is None:
        raise CFTimeError(
            f"unsupported calendar {calendar!r}; supported: {', '.join(sorted(CALENDARS))}"
        )
    match = _REF.match(ref)
    if match is None:
        raise CFTimeError(f"cannot read the reference date {ref.strip()!r} in {units!r}")
    g = match.groupdict()
    seconds = int(g["H"] or 0) * 3600 + int(g["M"] or 0) * 60 + float(g["S"] or 0)
    seconds -= _tz_offset_seconds(g["tz"])
    year, month, day = int(g["Y"]), int(g["m"]), int(g["d"])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise CFTimeError(f"invalid reference date {ref.strip()!r} in {units!r}")
    return CFTimeUnits(unit, year, month, day, seconds, cal)


def decode(value: float, units: str, calendar: str | None = None) -> int:
    """One CF time value to epoch ms (UTC)."""
    return parse_units(units, calendar).to_epoch_ms(value)


def _tz_offset_seconds(tz: str | None) -> float:
    if not tz or tz.upper() in ("Z", "UTC", "GMT"):
        return 0.0
    sign = -1.0 if tz.startswith("-") else 1.0
    digits = tz[1:].replace(":", "")
    hours = int(digits[:-2]) if len(digits) > 2 else int(digits)
    minutes = int(digits[-2:]) if len(digits) > 2 else 0
    return sign * (hours * 3600 + minutes * 60)


def _jdn_gregorian(y: int, m: int, d: int) -> int:
    a = (14 - m) // 12
    yy = y + 4800 - a
    mm = m + 12 * a - 3
    return d + (153 * mm + 2) // 5 + 365 * yy + yy // 4 - yy // 100 + yy // 400 - 32045


def _jdn_julian(y: int, m: int, d: int) -> int:
    a = (14 - m) // 12
    yy = y + 4800 - a
    mm = m + 12 * a - 3
    return d + (153 * mm + 2) // 5 + 365 * yy + yy // 4 - 32083


def _is_leap(y: int, calendar: str) -> bool:
    if calendar == "julian":
        return y % 4 == 0
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in_month(y: int, m: int, calendar: str) -> int:
    if calendar == "360_day":
        return 30
    if calendar == "noleap":
        return _NOLEAP_CUM[m] - _NOLEAP_CUM[m - 1]
    if calendar == "all_leap" or _is_leap(y, calendar):
        return _LEAP_CUM[m] - _LEAP_CUM[m - 1]
    return _NOLEAP_CUM[m] - _NOLEAP_CUM[m - 1]


def _model_day_count(y: int, m: int, d: int, calendar: str) -> int:
    if calendar == "360_day":
        return y * 360 + (m - 1) * 30 + (d - 1)
    cum = _NOLEAP_CUM if calendar == "noleap" else _LEAP_CUM
    return y * cum[12] + cum[m - 1] + (d - 1)


def _model_date(count: int, calendar: str) -> tuple[int, int, int]:
    if calendar == "360_day":
        y, rest = divmod(count, 360)
        m, d = divmod(rest, 30)
        return y, m + 1, d + 1
    cum = _NOLEAP_CUM if calendar == "noleap" else _LEAP_CUM
    y, rest = divmod(count, cum[12])
    m = 1
    while rest >= cum[m]:
        m += 1
    return y, m, rest - cum[m - 1] + 1
