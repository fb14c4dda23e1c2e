"""Writing PNG files with numpy and zlib: filter the rows, deflate them, wrap them in chunks.

Pillow's PNG writer picks a filter for every row by trying four of them and deflates with the
zlib strategy ``Z_FILTERED``; neither choice can be changed from its ``save``. Filtering with
numpy and deflating with zlib lets both be chosen, and releases the GIL while zlib works.
What each choice costs in CPU and bytes is measured by ``bench/encode_bench.py`` (the figures
and the reasons for the defaults are in docs/performance.md).
"""

from __future__ import annotations

import struct
import zlib
from typing import Literal

import numpy as np
import numpy.typing as npt

U8Array = npt.NDArray[np.uint8]
Filter = Literal["none", "sub", "up", "paeth", "adaptive"]
Strategy = Literal["default", "filtered", "rle"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_CODE = {"none": 0, "sub": 1, "up": 2, "paeth": 4}
_STRATEGY = {"default": zlib.Z_DEFAULT_STRATEGY, "filtered": zlib.Z_FILTERED, "rle": zlib.Z_RLE}
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA


def encode_png(
    pixels: U8Array,
    *,
    level: int,
    filter: Filter,
    strategy: Strategy,
    palette: U8Array | None = None,
    transparent_index: int | None = None,
) -> bytes:
    """A PNG of ``pixels``: (rows, cols) gray or palette indexes, or (rows, cols, 1..4).

    With ``palette`` ((n, 3) uint8, n <= 256) the pixels are indexes into it; index
    ``transparent_index`` is then fully transparent (a tRNS chunk).
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError("encode_png takes uint8 (rows, cols) or (rows, cols, channels)")
    rows, cols = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if palette is not None and channels != 1:
        raise ValueError("palette images have one channel of indexes")
    color_type = 3 if palette is not None else _COLOR_TYPE[channels]
    lines = np.ascontiguousarray(pixels).reshape(rows, cols * channels)
    raw = _filtered(lines, channels, filter)
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, _STRATEGY[strategy])
    idat = [compressor.compress(raw.data), compressor.flush()]  # zlib works without the GIL
    parts = [SIGNATURE]
    parts += _chunk(b"IHDR", [struct.pack(">IIBBBBB", cols, rows, 8, color_type, 0, 0, 0)])
    if palette is not None:
        parts += _chunk(b"PLTE", [np.ascontiguousarray(palette, dtype=np.uint8).tobytes()])
        if transparent_index is not None:
            parts += _chunk(b"tRNS", [bytes([255] * transparent_index + [0])])
    parts += _chunk(b"IDAT", idat)
    parts += _chunk(b"IEND", [])
    return b"".join(parts)  # the only copy of the compressed bytes made with the GIL held


def _chunk(tag: bytes, data: list[bytes]) -> list[bytes]:
    """A chunk as pieces to join: length, tag, ``data`` (not copied), CRC."""
    crc = zlib.crc32(tag)
    for piece in data:
        crc = zlib.crc32(piece, crc)  # releases the GIL for pieces over 5 KiB
    return [struct.pack(">I", sum(map(len, data))) + tag, *data, struct.pack(">I", crc)]


def _filtered(lines: U8Array, bpp: int, filter: Filter) -> U8Array:
    """The scanlines, each led by its filter type byte (PNG spec, section 9)."""
    if filter == "adaptive":
        return _adaptive(lines, bpp)
    out = np.empty((lines.shape[0], lines.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = _FILTER_CODE[filter]
    out[:, 1:] = _apply(lines, bpp, filter)
    return out


def _apply(lines: U8Array, bpp: int, filter: Filter) -> U8Array:
    if filter == "none":
        return lines
    out = np.empty_like(lines)
    if filter == "sub":
        out[:, :bpp] = lines[:, :bpp]
        np.subtract(lines[:, bpp:], lines[:, :-bpp], out=out[:, bpp:])
    elif filter == "up":
        out[0] = lines[0]
        np.subtract(lines[1:], lines[:-1], out=out[1:])
    else:
        out[:] = lines - _paeth_predictor(lines, bpp)
    return out


def _paeth_predictor(lines: U8Array, bpp: int) -> U8Array:
    a = np.zeros(lines.shape, dtype=np.int16)  # left
    a[:, bpp:] = lines[:, :-bpp]
    b = np.zeros(lines.shape, dtype=np.int16)  # above
    b[1:] = lines[:-1]
    c = np.zeros(lines.shape, dtype=np.int16)  # above left
    c[1:, bpp:] = lines[:-1, :-bpp]
    pa = np.abs(b - c)
    pb = np.abs(a - c)
    pc = np.abs(a + b - 2 * c)
    predictor = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return predictor.astype(np.uint8)


def _adaptive(lines: U8Array, bpp: int) -> U8Array:
    """Per row, the filter whose output has the smallest sum of absolute values (libpng's rule)."""
    names: tuple[Filter, ...] = ("none", "sub", "up", "paeth")
    candidates = np.stack([_apply(lines, bpp, name) for name in names])
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    best = np.argmin(cost, axis=0)
    out = np.empty((lines.shape[0], lines.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = np.array([_FILTER_CODE[n] for n in names], dtype=np.uint8)[best]
    out[:, 1:] = candidates[best, np.arange(lines.shape[0])]
    return out
