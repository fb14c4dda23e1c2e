"""LERC version 1 (``CntZImage``) blobs, for clients that ask ``lercVersion=1``.

The LERC library writes version 2 and later only; version 1 is simple enough to write here.
Each band is one ``CntZImage`` blob and a multi-band image is the bands' blobs one after the
other, as ArcGIS writes them: the first with the validity mask, the others only with their
values (they share the first band's mask). Every blob is lossless: the validity ("cnt") part is one
constant (all valid) or one uncompressed tile of 0/1 counts, and the value ("z") part one
uncompressed tile of the valid pixels' values as float32 — a layout every LERC 1 reader
decodes (the tile flags 0, 2 and 4 of the format), at four bytes per valid pixel.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

MAGIC = b"CntZImage "
VERSION = 11
CNT_Z = 8  # the image type of a count + value image
UNCOMPRESSED, CONSTANT_ZERO = 0, 2  # tile compression flags
_TILING = struct.Struct("<iiif")  # tiles down, tiles across, bytes, largest value


def encode_band(
    values: npt.NDArray[np.floating], valid: npt.NDArray[np.bool_], *, with_mask: bool = True
) -> bytes:
    """One band as a LERC 1 blob (values are written as float32; invalid pixels are not);
    without its mask (``with_mask`` False) for the bands after the first."""
    height, width = values.shape
    out = [MAGIC, struct.pack("<iiiid", VERSION, CNT_Z, height, width, 0.0)]
    if not with_mask:
        pass
    elif valid.all():  # cnt part: no tiles, no bytes, the constant count 1
        out.append(_TILING.pack(0, 0, 0, 1.0))
    else:
        counts = valid.astype("<f4").tobytes()
        out += [_TILING.pack(1, 1, 1 + len(counts), 1.0), bytes([UNCOMPRESSED]), counts]
    z = np.asarray(values, dtype="<f4")[valid]
    if z.size == 0 or not z.any():  # z part: all invalid, or every value 0
        out += [_TILING.pack(1, 1, 1, 0.0), bytes([CONSTANT_ZERO])]
    else:
        data = z.tobytes()
        out += [_TILING.pack(1, 1, 1 + len(data), float(z.max())), bytes([UNCOMPRESSED]), data]
    return b"".join(out)


def encode(data: npt.NDArray[np.generic], valid: npt.NDArray[np.bool_]) -> bytes:
    """A (bands, rows, cols) block as LERC 1: one blob per band, concatenated."""
    return b"".join(
        encode_band(np.asarray(band, dtype=np.float32), valid, with_mask=i == 0)
        for i, band in enumerate(data)
    )


__all__ = ["encode", "encode_band"]
