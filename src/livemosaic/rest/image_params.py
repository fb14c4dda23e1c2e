"""Image-request values: format, pixel type, interpolation, band ids, nodata, pixel size.

Names and enumerated values are matched case-insensitively (spec 1.3); every bad value raises
InvalidParameter naming the parameter and the accepted form.
"""

from __future__ import annotations

import math
from typing import Literal, cast

from livemosaic.core.models import PixelType, SpatialRef
from livemosaic.core.ports import ImageFormat, Resampling
from livemosaic.errors import InvalidParameter
from livemosaic.rest.params import (
    parse_int_list,
    parse_json,
    parse_number,
    split_numbers,
    sr_from_json,
)

FORMATS: tuple[ImageFormat, ...] = (
    "jpgpng",
    "png",
    "png8",
    "png24",
    "png32",
    "jpg",
    "bmp",
    "gif",
    "tiff",
    "lerc",
    "bip",
    "bsq",
)
_FORMAT_ALIASES: dict[str, ImageFormat] = {"jpeg": "jpg", "tif": "tiff"}


def parse_format(text: str | None, name: str = "format") -> ImageFormat:
    """An exportImage format name (case-insensitive), default ``jpgpng``."""
    if text is None:
        return "jpgpng"
    low = text.strip().lower()
    for fmt in FORMATS:
        if fmt == low:
            return fmt
    if low in _FORMAT_ALIASES:
        return _FORMAT_ALIASES[low]
    raise InvalidParameter(
        name, f"'{text[:40]}' is not a supported format.", accepted=" ".join(FORMATS)
    )


PIXEL_TYPES: tuple[PixelType, ...] = (
    "U1",
    "U2",
    "U4",
    "U8",
    "S8",
    "U16",
    "S16",
    "U32",
    "S32",
    "F32",
    "F64",
    "C64",
    "C128",
    "UNKNOWN",
)


def parse_pixel_type(text: str | None, name: str = "pixelType") -> PixelType | None:
    """A pixel type such as U8 or F32 (case-insensitive); None when absent or UNKNOWN."""
    if text is None:
        return None
    up = text.strip().upper()
    if up not in PIXEL_TYPES:
        raise InvalidParameter(
            name, f"'{text[:40]}' is not a pixel type.", accepted=" ".join(PIXEL_TYPES)
        )
    return None if up == "UNKNOWN" else cast(PixelType, up)


_RESAMPLING: dict[str, Resampling] = {
    "rsp_nearestneighbor": "nearest",
    "rsp_bilinearinterpolation": "bilinear",
    "rsp_cubicconvolution": "cubic",
    "rsp_majority": "mode",
    "nearestneighbor": "nearest",
    "nearest": "nearest",
    "bilinear": "bilinear",
    "bilinearinterpolation": "bilinear",
    "cubic": "cubic",
    "cubicconvolution": "cubic",
    "majority": "mode",
}


def parse_interpolation(text: str | None, name: str, default: Resampling) -> Resampling:
    """``RSP_NearestNeighbor``, ``RSP_BilinearInterpolation``, ``RSP_CubicConvolution``, ``RSP_Majority``."""
    if text is None:
        return default
    found = _RESAMPLING.get(text.strip().lower())
    if found is None:
        raise InvalidParameter(
            name,
            f"'{text[:40]}' is not an interpolation.",
            accepted="RSP_NearestNeighbor, RSP_BilinearInterpolation, RSP_CubicConvolution or RSP_Majority",
        )
    return found


def resampling_of_service(value: str | None) -> Resampling:
    """The resampling named by a service's ``defaultResamplingMethod`` (Bilinear if unknown)."""
    if value is None:
        return "bilinear"
    return _RESAMPLING.get(value.strip().lower(), "bilinear")


def parse_band_ids(
    text: str | None, band_count: int, name: str = "bandIds"
) -> tuple[int, ...] | None:
    """Zero-based band indexes (may reorder or repeat), each below ``band_count``."""
    ids = parse_int_list(text, name)
    if ids is None:
        return None
    for i in ids:
        if i < 0 or (band_count > 0 and i >= band_count):
            raise InvalidParameter(
                name,
                f"band {i} does not exist.",
                accepted=f"zero-based band ids below {band_count}",
            )
    return ids


def parse_nodata(text: str | None, name: str = "noData") -> tuple[float, ...] | None:
    """One nodata value or one per band (``nan`` allowed for float data)."""
    if text is None:
        return None
    accepted = "a number, or one number per band separated by commas"
    out: list[float] = []
    for part in [p.strip() for p in text.strip().strip("[]").split(",")]:
        if part.lower() == "nan":
            out.append(math.nan)
            continue
        out.append(parse_number(part, name) if part else math.nan)
    if not out:
        raise InvalidParameter(name, "no value given.", accepted=accepted)
    return tuple(out)


def parse_nodata_interpretation(
    text: str | None, name: str = "noDataInterpretation"
) -> Literal["any", "all"]:
    """``esriNoDataMatchAny`` (default) or ``esriNoDataMatchAll``."""
    if text is None:
        return "any"
    low = text.strip().lower()
    if low in ("esrinodatamatchany", "any"):
        return "any"
    if low in ("esrinodatamatchall", "all"):
        return "all"
    raise InvalidParameter(
        name, f"'{text[:40]}' is not known.", accepted="esriNoDataMatchAny or esriNoDataMatchAll"
    )


def parse_pixel_size(
    text: str | None, name: str = "pixelSize"
) -> tuple[float, SpatialRef | None] | None:
    """``x,y`` or a point JSON; returns the x size (map units) and the point's SR."""
    if text is None:
        return None
    accepted = 'x,y or a point JSON {"x":..,"y":..,"spatialReference":..}'
    if text.lstrip().startswith("{"):
        value = parse_json(text, name, accepted)
        if not isinstance(value, dict):
            raise InvalidParameter(name, "not a point.", accepted=accepted)
        lowered = {str(k).lower(): v for k, v in value.items()}
        x = lowered.get("x")
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x <= 0:
            raise InvalidParameter(name, "x must be a positive number.", accepted=accepted)
        sr = (
            sr_from_json(lowered["spatialreference"], name)
            if lowered.get("spatialreference")
            else None
        )
        return float(x), sr
    values = split_numbers(text, name, accepted)
    if len(values) not in (1, 2) or values[0] <= 0:
        raise InvalidParameter(name, "one or two positive numbers expected.", accepted=accepted)
    return values[0], None


__all__ = [
    "FORMATS",
    "PIXEL_TYPES",
    "parse_band_ids",
    "parse_format",
    "parse_interpolation",
    "parse_nodata",
    "parse_nodata_interpretation",
    "parse_pixel_size",
    "parse_pixel_type",
    "resampling_of_service",
]
