"""Request parameters: case-insensitive access and parsing of the ArcGIS value syntaxes.

:class:`Params` merges the query string and a form body (url-encoded or multipart); names
are matched case-insensitively, the body wins over the query string and the last occurrence
wins (spec 1.2, 1.3). The ``parse_*`` functions turn parameter text into core values; every
bad value raises :class:`InvalidParameter` naming the parameter and the accepted form. JSON
objects (mosaic and rendering rules, geometries) are parsed in :mod:`livemosaic.rest.rules` and
:mod:`livemosaic.rest.geometry`; envelopes (``bbox`` and geometry envelopes) in
:mod:`livemosaic.rest.envelopes`; image-request values (format, pixel type, interpolation, band
ids, nodata, pixel size) in :mod:`livemosaic.rest.image_params`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request

from livemosaic.core.models import MAX_CATALOG_INT, MAX_TIME_MS, MIN_TIME_MS, SpatialRef
from livemosaic.core.where import parse_date
from livemosaic.errors import InvalidParameter, LiveMosaicError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Params:
    """Request parameters by case-folded name (empty values count as absent)."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, str] = {}
        for key, value in pairs:
            self._values[key.lower()] = value

    def get(self, name: str) -> str | None:
        """The stripped value of a parameter, or None when absent or empty."""
        value = self._values.get(name.lower())
        if value is None:
            return None
        value = value.strip()
        return value or None

    def raw(self, name: str) -> str | None:
        """The value as sent (not stripped), or None."""
        return self._values.get(name.lower())

    def names(self) -> list[str]:
        """Case-folded names of all parameters sent."""
        return list(self._values)

    def items(self) -> list[tuple[str, str]]:
        """All (case-folded name, value) pairs."""
        return list(self._values.items())

    @property
    def f(self) -> str | None:
        """The lower-cased ``f`` parameter, or None."""
        value = self.get("f")
        return value.lower() if value else None

    def flag(self, name: str, default: bool) -> bool:
        """A boolean: true/false/1/0 in any case."""
        return parse_bool(self.get(name), name, default)

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """An integer (decimals are truncated), checked against optional bounds."""
        return parse_int(self.get(name), name, default, minimum=minimum, maximum=maximum)

    def number(self, name: str, default: float | None) -> float | None:
        """A finite decimal number."""
        text = self.get(name)
        if text is None:
            return default
        return parse_number(text, name)

    def json(self, name: str, accepted: str) -> Any:
        """The JSON value of a parameter, or None when absent."""
        text = self.get(name)
        if text is None:
            return None
        return parse_json(text, name, accepted)


async def read_params(request: Request) -> Params:
    """The merged parameters of a request (cached on ``request.state``)."""
    cached = getattr(request.state, "params", None)
    if isinstance(cached, Params):
        return cached
    pairs: list[tuple[str, str]] = list(request.query_params.multi_items())
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in FORM_TYPES:
            try:
                form = await request.form()
            except LiveMosaicError:
                raise
            except (ValueError, KeyError, AssertionError, HTTPException) as exc:
                raise InvalidParameter(
                    "body",
                    f"the form body cannot be read: {getattr(exc, 'detail', exc)}",
                    accepted=", ".join(FORM_TYPES),
                ) from exc
            pairs.extend((k, v) for k, v in form.multi_items() if isinstance(v, str))
    params = Params(pairs)
    request.state.params = params
    return params


# --- scalars ------------------------------------------------------------------------------


def parse_bool(text: str | None, name: str, default: bool) -> bool:
    """``true``/``false``/``1``/``0`` in any case."""
    if text is None:
        return default
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise InvalidParameter(name, f"'{text[:40]}' is not a boolean.", accepted="true or false")


def parse_number(text: str, name: str) -> float:
    """A finite number with a period as decimal separator."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameter(
            name, f"'{text[:40]}' is not a number.", accepted="a number such as 10.5"
        ) from None
    if not math.isfinite(value):
        raise InvalidParameter(
            name, f"'{text[:40]}' is not a finite number.", accepted="a finite number"
        )
    return value


def parse_int(
    text: str | None,
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """An integer (decimals truncated) within optional bounds."""
    if text is None:
        return default
    value = int(parse_number(text, name))
    if minimum is not None and value < minimum:
        raise InvalidParameter(
            name, f"{value} is below the minimum {minimum}.", accepted=f"an integer >= {minimum}"
        )
    if maximum is not None and value > maximum:
        raise InvalidParameter(
            name, f"{value} is above the maximum {maximum}.", accepted=f"an integer <= {maximum}"
        )
    return value


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


def _json_int(text: str) -> int | float:
    """A JSON integer; beyond the 64-bit range a float (infinite when huge), which every
    number check then refuses instead of overflowing later."""
    value = int(text) if len(text) <= 20 else None
    if value is not None and abs(value) <= MAX_CATALOG_INT:
        return value
    return float(text)


def parse_json(text: str, name: str, accepted: str) -> Any:
    """Parse JSON text, naming the parameter on failure.

    NaN and Infinity are not JSON and are refused; integers beyond the 64-bit range become
    decimals (see :func:`_json_int`).
    """
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_json_int)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            reason = exc.msg
        elif isinstance(exc, RecursionError):
            reason = "nested too deeply"
        else:
            reason = str(exc)[:80]
        raise InvalidParameter(name, f"not valid JSON ({reason}).", accepted=accepted) from None


def split_numbers(text: str, name: str, accepted: str) -> list[float]:
    """Comma (or space) separated numbers, optionally in brackets."""
    body = text.strip().strip("[]")
    parts = [p for p in body.replace(" ", ",").split(",") if p.strip()]
    out: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise InvalidParameter(
                name, f"'{part[:40]}' is not a number.", accepted=accepted
            ) from None
        if not math.isfinite(value):
            raise InvalidParameter(
                name, f"'{part[:40]}' is not a finite number.", accepted=accepted
            )
        out.append(value)
    return out


def parse_int_list(text: str | None, name: str) -> tuple[int, ...] | None:
    """``1,2,3`` (or ``[1,2,3]``) as integers; None when absent."""
    if text is None:
        return None
    accepted = "a comma-separated list of integers such as 1,2,3"
    values = split_numbers(text, name, accepted)
    if not values:
        raise InvalidParameter(name, "the list is empty.", accepted=accepted)
    if any(v != int(v) for v in values):
        raise InvalidParameter(name, "the list holds a non-integer.", accepted=accepted)
    if any(abs(v) > MAX_CATALOG_INT for v in values):
        raise InvalidParameter(
            name, f"the list holds a number beyond ±{MAX_CATALOG_INT}.", accepted=accepted
        )
    return tuple(int(v) for v in values)


# --- spatial references, extents, sizes, time ------------------------------------------------

SR_ACCEPTED = (
    'a wkid such as 4326, or JSON {"wkid": 4326}, {"latestWkid": 3857} or {"wkt": "PROJCS[...]"}'
)


def sr_from_json(value: Any, name: str) -> SpatialRef:
    """A SpatialRef from a decoded JSON value (integer or object)."""
    if isinstance(value, bool):
        raise InvalidParameter(name, "a boolean is not a spatial reference.", accepted=SR_ACCEPTED)
    if isinstance(value, int | float) and float(value).is_integer() and value > 0:
        return SpatialRef.from_epsg(int(value))
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        wkid = lowered.get("wkid")
        latest = lowered.get("latestwkid")
        wkt = lowered.get("wkt") or lowered.get("wkt2")
        for key, code in (("wkid", wkid), ("latestWkid", latest)):
            if code is not None and (
                isinstance(code, bool) or not isinstance(code, int) or code <= 0
            ):
                raise InvalidParameter(
                    name, f"{key} must be a positive integer.", accepted=SR_ACCEPTED
                )
        if wkid is not None or latest is not None:
            w = cast(int, wkid if wkid is not None else latest)
            sr = SpatialRef.from_epsg(w)
            if latest is not None and sr.latest_wkid != 3857:
                return SpatialRef(wkid=w, latest_wkid=cast(int, latest))
            return sr
        if isinstance(wkt, str) and wkt.strip():
            return SpatialRef(wkt=wkt.strip())
    raise InvalidParameter(name, "this is not a spatial reference.", accepted=SR_ACCEPTED)


def parse_sr(text: str | None, name: str) -> SpatialRef | None:
    """A spatial reference from a wkid, SR JSON (wkid / latestWkid only / wkt); None if absent."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return sr_from_json(int(stripped), name)
    if stripped.startswith("{"):
        return sr_from_json(parse_json(stripped, name, SR_ACCEPTED), name)
    if stripped.upper().startswith(("PROJCS", "GEOGCS", "PROJCRS", "GEOGCRS", "COMPD_CS")):
        return SpatialRef(wkt=stripped)
    raise InvalidParameter(
        name, f"'{stripped[:60]}' is not a spatial reference.", accepted=SR_ACCEPTED
    )


def parse_size(text: str | None, name: str = "size") -> tuple[int, int] | None:
    """``width,height`` in pixels; fractions are rounded to the nearest integer."""
    if text is None:
        return None
    accepted = "width,height in pixels such as 800,600"
    values = split_numbers(text, name, accepted)
    if len(values) != 2:
        raise InvalidParameter(name, f"{len(values)} numbers given, 2 expected.", accepted=accepted)
    width, height = (int(math.floor(v + 0.5)) for v in values)
    if width < 1 or height < 1:
        raise InvalidParameter(name, "width and height must be at least 1.", accepted=accepted)
    return width, height


TIME_ACCEPTED = (
    "epoch milliseconds or dates (2024-05-01T12:00:00Z): t, or t1,t2 where either end may be null"
)


def parse_time(text: str | None, name: str = "time") -> tuple[int | None, int | None] | None:
    """``t`` or ``t1,t2`` in epoch ms or as dates (``null`` = open end; decimals truncated)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (1, 2):
        raise InvalidParameter(
            name, f"{len(parts)} values given, 1 or 2 expected.", accepted=TIME_ACCEPTED
        )
    values: list[int | None] = []
    for part in parts:
        if part.lower() in ("null", "none", ""):
            values.append(None)
            continue
        try:
            number = float(part)
        except ValueError:
            moment = parse_date(part)  # the one date parser: ISO 8601 with Z/offset, …
            if moment is None:
                raise InvalidParameter(
                    name, f"'{part[:40]}' is not a time.", accepted=TIME_ACCEPTED
                ) from None
            number = float(moment)
        if not math.isfinite(number):
            raise InvalidParameter(name, f"'{part[:40]}' is not a time.", accepted=TIME_ACCEPTED)
        if not MIN_TIME_MS <= number <= MAX_TIME_MS:
            raise InvalidParameter(
                name,
                f"'{part[:40]}' is outside the dates a time can name "
                f"({MIN_TIME_MS} … {MAX_TIME_MS}: years 1 to 9999).",
                accepted=TIME_ACCEPTED,
            )
        values.append(int(number))
    if len(values) == 1:
        if values[0] is None:
            return None
        return values[0], values[0]
    start, end = values
    if start is None and end is None:
        return None
    if start is not None and end is not None and start > end:
        raise InvalidParameter(name, "the start is after the end.", accepted=TIME_ACCEPTED)
    return start, end


def parse_choice(text: str | None, name: str, choices: Iterable[str], default: str) -> str:
    """One of ``choices`` (case-insensitive), returned in its canonical spelling."""
    options = list(choices)
    if text is None:
        return default
    for option in options:
        if option.lower() == text.strip().lower():
            return option
    raise InvalidParameter(
        name, f"'{text[:40]}' is not one of the accepted values.", accepted=", ".join(options)
    )


__all__ = [
    "Params",
    "parse_bool",
    "parse_choice",
    "parse_int",
    "parse_int_list",
    "parse_json",
    "parse_number",
    "parse_size",
    "parse_sr",
    "parse_time",
    "read_params",
    "sr_from_json",
    "split_numbers",
]
