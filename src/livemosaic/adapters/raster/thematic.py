"""Thematic rasters at ingest: the palette, the raster attribute table and the classes present.

A one-band raster is thematic when its band is paletted or it has a raster attribute table
(RAT). What is found goes into the item's attributes under the keys of
:mod:`livemosaic.core.thematic`:

* the palette as ``[[value, red, green, blue], …]`` (entries with alpha 0 left out);
* the RAT as ``{"fields": [{"name", "type", "usage"}, …], "rows": [[…], …]}``. GeoTIFF (and
  the other formats livemosaic reads) keep RATs in GDAL's ``<file>.aux.xml`` sidecar, which
  rasterio does not expose, so that file is read here (types ``integer``/``real``/``string``,
  usages as GDAL names them: ``MinMax``, ``PixelCount``, ``Name``, ``Red``, …);
* the integer values that occur (from a read of at most 1024 x 1024 pixels: classes smaller
  than that sampling may be missed), for legends.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
from rasterio.enums import ColorInterp, Resampling

from livemosaic.core.thematic import CLASSES_KEY, COLORMAP_KEY, RAT_KEY

SAMPLE_SIDE = 1024  # longest side of the read that finds the classes present
MAX_CLASSES = 65536  # palettes and class lists of 16-bit data at most
MAX_RAT_BYTES = 16 * 1024 * 1024  # a larger .aux.xml is not read
RAT_TYPES = {"0": "integer", "1": "real", "2": "string"}
RAT_USAGES = {
    "0": "Generic",
    "1": "PixelCount",
    "2": "Name",
    "3": "Min",
    "4": "Max",
    "5": "MinMax",
    "6": "Red",
    "7": "Green",
    "8": "Blue",
    "9": "Alpha",
}


def thematic_attributes(ds: Any, path: str, band: int) -> dict[str, Any]:
    """The thematic attributes of ``band`` of an open dataset (empty when it is not thematic)."""
    out: dict[str, Any] = {}
    if ds.colorinterp[band - 1] == ColorInterp.palette:
        try:
            entries = ds.colormap(band)
        except ValueError:  # no colour table after all
            entries = {}
        colormap = [[int(v), int(c[0]), int(c[1]), int(c[2])] for v, c in sorted(entries.items())
                    if len(c) < 4 or c[3] > 0][:MAX_CLASSES]  # fmt: skip
        if colormap:
            out[COLORMAP_KEY] = colormap
    table = read_rat(path, band)
    if table is not None:
        out[RAT_KEY] = table
    if out and np.dtype(ds.dtypes[band - 1]).kind in "iu":
        out[CLASSES_KEY] = _classes(ds, band)
    return out


def _classes(ds: Any, band: int) -> list[int]:
    """The distinct values of the band's valid pixels, from a read of bounded size."""
    scale = max(ds.width, ds.height) / SAMPLE_SIDE
    shape = (ds.height, ds.width)
    if scale > 1:
        shape = (max(1, int(ds.height / scale)), max(1, int(ds.width / scale)))
    data = ds.read(band, out_shape=shape, masked=True, resampling=Resampling.nearest)
    values = np.unique(data.compressed()) if np.ma.isMaskedArray(data) else np.unique(data)
    return [int(v) for v in values[:MAX_CLASSES]]


def read_rat(path: str, band: int) -> dict[str, Any] | None:
    """The raster attribute table of ``band`` from ``<path>.aux.xml`` (None when absent; a
    sidecar that is a symbolic link is not followed)."""
    aux = path + ".aux.xml"
    try:
        if os.path.islink(aux) or not os.path.isfile(aux) or os.path.getsize(aux) > MAX_RAT_BYTES:
            return None
        root = ET.parse(aux).getroot()
    except (OSError, ET.ParseError):
        return None
    for pam_band in root.iter("PAMRasterBand"):
        if pam_band.get("band", "1") != str(band):
            continue
        rat = pam_band.find("GDALRasterAttributeTable")
        if rat is None:
            return None
        return _table(rat)
    return None


def _table(rat: ET.Element) -> dict[str, Any] | None:
    fields: list[dict[str, str]] = []
    for defn in rat.findall("FieldDefn"):
        fields.append(
            {
                "name": (defn.findtext("Name") or f"Field{len(fields)}").strip(),
                "type": RAT_TYPES.get((defn.findtext("Type") or "2").strip(), "string"),
                "usage": RAT_USAGES.get((defn.findtext("Usage") or "0").strip(), "Generic"),
            }
        )
    if not fields:
        return None
    rows: list[list[Any]] = []
    for row in rat.findall("Row")[:MAX_CLASSES]:
        cells = [(f.text or "") for f in row.findall("F")]
        cells += [""] * (len(fields) - len(cells))
        rows.append(
            [_cell(text, field["type"]) for text, field in zip(cells, fields, strict=False)]
        )
    return {"fields": fields, "rows": rows}


def _cell(text: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(float(text))
        if kind == "real":
            return float(text)
    except ValueError:
        return None
    return text
