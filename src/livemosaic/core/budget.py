"""How much memory a request will take, estimated before anything is read.

The estimate follows the export pipeline stage by stage (``ImageExporter._compose``, the
compositors of :mod:`livemosaic.core.compose`, ``finish_block`` and the encoders) and counts, per
pixel of the read grid, the bytes of every array alive at that stage's peak. The request's peak
is the largest stage plus a fixed allowance for GDAL's warp buffers and the interpreter. Items
are read one after the other, so their number changes the time a request takes, not its peak.

Symbols (per pixel): ``B`` bands read (the service's band count; every band of an item is
read), ``i`` bytes of the items' pixel type (float32 at least for packed data), ``w`` bytes of
the compositor's accumulator (the items' type for First/Last/Min/Max, float64 for
Mean/Sum/Blend), ``O`` output bands and ``o`` bytes of the output pixel type.

* read + compose: accumulator and masks (``B*(w+1)+1``; Mean/Sum/Blend ``16*B``), the item's
  block (``2*B*i+3``: data, a copy when the read is clipped to the file, the mask and the alpha
  band), the per-band validity and feed temporaries (``B+3``, ``2*B`` more for float items'
  NaN test, ``32*B`` more for Mean/Sum/Blend's float64 products, ``B*(i+2)`` for Min/Max);
* result: the accumulator becomes the result in place (``B*8`` more for Mean/Blend's division);
* finish: the composed block stays alive (``B*w+1``) under band selection (``O*w``), a rendering
  rule (``24*B``: float64 intermediates), the pixel type conversion (``O*o`` when the output
  type holds every value of the input type, else ``O*(24+o)``: float64, rounding and clipping
  copies), then the 8-bit stretch (``O+40``: one band at a time in float64) or, for other
  formats, invalid pixels filled (``O*o``, only when no earlier step made a fresh array);
* encode: the final block (``O*o+1``) and the encoder's own buffers: GeoTIFF one band's copy
  (``o``) and twice the raw size (GDAL's compressed file and the bytes read back: lossless
  compression is counted at its worst, no gain), LERC five times (a filled copy, pylerc's
  copy of the input, its buffer, the bytes kept, one more as lossless float LERC can pass the
  raw size), BIP twice, BSQ once, 8-bit formats about 20 bytes per pixel (40 for the
  paletted png8/gif).

``tests/core/test_budget.py`` checks the figures; the measured-to-estimated ratios are in
``docs/design.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIB = 1024 * 1024
# GDAL warp buffers (the warper works in chunks of its 64 MiB memory limit), the interpreter
FIXED_BYTES = 64 * MIB
WEIGHTED_OPERATIONS = frozenset({"Mean", "Sum", "Blend"})
PALETTED_FORMATS = frozenset({"png8", "gif"})
# copies of the raw output an encoder holds besides the final block (compressed output counted
# at its worst, the raw size): GeoTIFF the compressed file twice (GDAL's buffer and the bytes
# read back) plus one band's copy; LERC a filled copy, pylerc's copy of the input, its output
# buffer and the bytes kept, and one more: lossless LERC of float data can pass the raw size
RAW_FACTORS = {"tiff": 2, "lerc": 5, "bip": 2, "bsq": 1}
# LERC 1 (adapters/raster/lerc1) writes float32 whatever the pixel type, and the mask as float32
# counts: 4 bytes per band and pixel plus 4 for the mask; at its peak the blobs and their joined
# copy (twice that), or while a band is written the blobs so far plus the band's float32 copy,
# its valid values and their bytes (12)
LERC1_BYTES_PER_BAND, LERC1_BAND_WORK = 4, 12
EIGHT_BIT_ENCODE_BYTES = 20
PALETTED_ENCODE_BYTES = 40


@dataclass(frozen=True, slots=True)
class ExportShape:
    """What the memory of an export depends on, known before any read."""

    rows: int  # of the read grid (output plus padding for neighbourhood functions)
    cols: int
    bands: int  # bands read from every item
    item_dtype: np.dtype[np.generic]
    operation: str  # mosaic operation: First, Last, Min, Max, Mean, Sum, Blend
    out_bands: int
    out_dtype: np.dtype[np.generic] | None  # None: no pixelType conversion
    band_selection: bool = False
    rendering: bool = False
    eight_bit: bool = False
    format: str = "tiff"
    lerc_version: int = 2


def _holds(dst: np.dtype[np.generic], src: np.dtype[np.generic]) -> bool:
    """True when ``dst`` holds every value of ``src`` (a plain cast, no clipping)."""
    return bool(np.can_cast(src, dst, casting="safe"))


def stage_bytes(shape: ExportShape) -> dict[str, int]:
    """Bytes per pixel of the read grid at each stage's peak (see the module docstring)."""
    b, o_bands = max(shape.bands, 1), max(shape.out_bands, 1)
    i = shape.item_dtype.itemsize
    weighted = shape.operation in WEIGHTED_OPERATIONS
    w = 8 if weighted else i
    work = np.dtype(np.float64) if weighted else shape.item_dtype
    state = 16 * b if weighted else b * (w + 1) + 1
    read = 2 * b * i + 3
    floating = np.issubdtype(shape.item_dtype, np.floating)
    feed = b + 3 + (2 * b if floating else 0)  # validity per band, the pixels taken, NaN test
    if weighted:
        feed += 32 * b  # float64 values, masked values, weights, their product
    elif shape.operation in ("Min", "Max"):
        feed += b * (i + 2)  # the comparison, the pixels taken, the values taken
    compose = state + read + feed
    result = state + b + 1 + (8 * b if weighted else 0)
    out_dtype = shape.out_dtype or work
    o = out_dtype.itemsize
    fresh = shape.band_selection or shape.rendering or shape.out_dtype is not None
    finish = b * w + 1
    finish += o_bands * w if shape.band_selection else 0
    finish += 24 * b if shape.rendering else 0
    if shape.out_dtype is not None:
        finish += o_bands * o if _holds(shape.out_dtype, work) else o_bands * (24 + o)
    if shape.eight_bit:
        finish += 0 if out_dtype == np.uint8 else o_bands + 40
        final = o_bands + 1
    else:
        finish += 0 if fresh else o_bands * o
        final = o_bands * o + 1
    if shape.eight_bit or shape.format not in RAW_FACTORS:
        fmt_bytes = (
            PALETTED_ENCODE_BYTES if shape.format in PALETTED_FORMATS else EIGHT_BIT_ENCODE_BYTES
        )
        encode = final + fmt_bytes
    elif shape.format == "lerc" and shape.lerc_version == 1:
        blobs = LERC1_BYTES_PER_BAND * (o_bands + 1)
        encode = final + max(2 * blobs, blobs + LERC1_BAND_WORK)
    else:
        encode = final + RAW_FACTORS[shape.format] * o_bands * o
        encode += o if shape.format == "tiff" else 0  # one band's copy
    return {"compose": compose, "result": result, "finish": finish, "encode": encode}


def export_bytes(shape: ExportShape) -> int:
    """The estimated peak memory of an export in bytes."""
    pixels = max(shape.rows, 0) * max(shape.cols, 0)
    return FIXED_BYTES + pixels * max(stage_bytes(shape).values())


def pixel_bytes(estimate: int) -> int:
    """The part of an estimate (``export_bytes``, ``points_bytes``) that scales with the
    request: the estimate without the fixed allowance every request is counted with."""
    return max(estimate - FIXED_BYTES, 0)


def points_bytes(points: int, items: int, bands: int) -> int:
    """The estimated memory of a point operation (identify, getSamples): the fixed allowance
    plus, per point and item, the 1x1 read and the sample kept for the answer (about 2 KiB of
    Python objects and JSON) and its values."""
    return FIXED_BYTES + max(points, 1) * max(items, 1) * (2048 + 16 * max(bands, 1))


def mib(value: int) -> str:
    """Bytes as a rounded MiB figure for messages."""
    return f"{value / MIB:,.0f} MiB"


__all__ = [
    "ExportShape",
    "FIXED_BYTES",
    "MIB",
    "export_bytes",
    "mib",
    "pixel_bytes",
    "points_bytes",
    "stage_bytes",
]
