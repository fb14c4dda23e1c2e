"""Small rasters written with GDAL (through rasterio) for the data cases the samples lack.

* :func:`packed_tif` - two int16 bands packed with different scales and offsets.
* :func:`ensemble_grib` - GRIB2 temperature at 2 m and 850 hPa, three ensemble members each.
* :func:`crs_less_asc` - an ESRI ASCII grid with a geotransform and no CRS.
* :func:`tagged_tif` / :func:`global_attr_nc` - acquisition times in metadata items.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine

UTM = "EPSG:32618"
UTM_TRANSFORM = Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 4000000.0)
# band k (1-based): value = raw * scale + offset
PACKED_SCALES = (0.1, 0.01)
PACKED_OFFSETS = (0.0, 100.0)
# GRIB ensemble: (level type code, level, level type abbreviation, base value [C])
GRIB_LEVELS = ((103, 2, "HTGL", 20.0), (100, 85000, "ISBL", -5.0))
GRIB_MEMBERS = (0, 1, 2)
GRIB_REF = "2024-01-01T00:00:00Z"
GRIB_REF_MS = 1704067200000


def packed_raw() -> np.ndarray:
    """The stored (raw) values of :func:`packed_tif`: (2, 20, 20) int16."""
    base = np.arange(400, dtype=np.int16).reshape(20, 20)
    return np.stack([base, base * 2 + 7])


def packed_tif(folder: Path) -> Path:
    """A 2-band int16 GeoTIFF whose bands are packed differently."""
    path = folder / "packed.tif"
    profile = {"driver": "GTiff", "width": 20, "height": 20, "count": 2, "dtype": "int16",
               "crs": UTM, "transform": UTM_TRANSFORM}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(packed_raw())
        dst.scales = PACKED_SCALES
        dst.offsets = PACKED_OFFSETS
    return path


def grib_value(member: int, base: float) -> float:
    """The value every cell of one message of :func:`ensemble_grib` holds."""
    return base + member


def ensemble_grib(folder: Path) -> Path:
    """GRIB2 TMP at 2 m above ground and at 850 hPa, members 0-2 (template 4.1), one file."""
    src = folder / "grib_src.tif"
    parts: list[bytes] = []
    profile = {"driver": "GTiff", "width": 10, "height": 8, "count": 1, "dtype": "float32",
               "crs": "EPSG:4326", "transform": Affine(1.0, 0.0, -80.0, 0.0, -1.0, 45.0)}  # fmt: skip
    for code, level, _, base in GRIB_LEVELS:
        for member in GRIB_MEMBERS:
            with rasterio.open(src, "w", **profile) as dst:
                dst.write(np.full((1, 8, 10), grib_value(member, base), dtype=np.float32))
            one = folder / f"part_{code}_{member}.grib2"
            rasterio.shutil.copy(
                src,
                one,
                driver="GRIB",
                PDS_PDTN=1,
                PDS_TEMPLATE_ASSEMBLED_VALUES=(
                    f"0 0 2 0 84 0 0 1 0 {code} 0 {level} 255 0 0 3 {member} {len(GRIB_MEMBERS)}"
                ),
                IDS=f"CENTER=7 SUBCENTER=0 MASTER_TABLE=2 SIGNF_REF_TIME=1 REF_TIME={GRIB_REF} "
                "PROD_STATUS=0 TYPE=1",
            )
            parts.append(one.read_bytes())
            one.unlink()
    src.unlink()
    path = folder / "ensemble.grib2"
    path.write_bytes(b"".join(parts))  # GRIB files are concatenated messages
    return path


def crs_less_asc(folder: Path) -> Path:
    """An ESRI ASCII grid (no .prj: no CRS) on the UTM 18N grid of :func:`packed_tif`."""
    src = folder / "asc_src.tif"
    profile = {"driver": "GTiff", "width": 20, "height": 20, "count": 1, "dtype": "float32",
               "transform": UTM_TRANSFORM}  # fmt: skip
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(np.arange(400, dtype=np.float32).reshape(1, 20, 20))
    path = folder / "nocrs.asc"
    rasterio.shutil.copy(src, path, driver="AAIGrid")
    src.unlink()
    for extra in folder.glob("nocrs.asc.aux.xml"):
        extra.unlink()
    assert not (folder / "nocrs.prj").exists()
    return path


def tagged_tif(folder: Path, name: str, tags: dict[str, str], ns: str | None = None) -> Path:
    """A small UTM GeoTIFF with metadata items ``tags`` (in domain ``ns``)."""
    path = folder / name
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint8",
               "crs": UTM, "transform": UTM_TRANSFORM}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 8, 8), dtype=np.uint8))
        if ns:
            dst.update_tags(ns=ns, **tags)
        else:
            dst.update_tags(**tags)
    return path


def global_attr_nc(folder: Path, name: str, attrs: dict[str, str]) -> Path:
    """A one-variable NetCDF without a time dimension whose global attributes are ``attrs``."""
    src = folder / f"{name}.src.tif"
    profile = {"driver": "GTiff", "width": 10, "height": 8, "count": 1, "dtype": "float32",
               "crs": "EPSG:4326", "transform": Affine(0.5, 0.0, 10.0, 0.0, -0.5, 50.0)}  # fmt: skip
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(np.arange(80, dtype=np.float32).reshape(1, 8, 10))
        dst.update_tags(**{f"NC_GLOBAL#{k}": v for k, v in attrs.items()})
    path = folder / name
    rasterio.shutil.copy(src, path, driver="netCDF")
    src.unlink()
    return path


def _nc_name(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">i", len(raw)) + raw + b"\0" * (-len(raw) % 4)


def _nc_attrs(attrs: dict[str, str]) -> bytes:
    if not attrs:
        return struct.pack(">ii", 0, 0)
    out = struct.pack(">ii", 0x0C, len(attrs))
    for key, value in attrs.items():
        raw = value.encode()
        out += _nc_name(key) + struct.pack(">ii", 2, len(raw)) + raw + b"\0" * (-len(raw) % 4)
    return out


def write_netcdf3(
    path: Path,
    dims: dict[str, int],
    variables: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, str]]],
    global_attrs: dict[str, str] | None = None,
) -> Path:
    """A NetCDF-3 classic file of float32 variables, written byte by byte (no library needed)."""
    names = list(dims)
    header = b"CDF\x01" + struct.pack(">i", 0)
    header += struct.pack(">ii", 0x0A, len(dims))
    for name, size in dims.items():
        header += _nc_name(name) + struct.pack(">i", size)
    header += _nc_attrs(global_attrs or {})
    blobs = [np.ascontiguousarray(a, dtype=">f4").tobytes() for _, a, _ in variables.values()]
    entries = []
    for (var, (vdims, _, attrs)), blob in zip(variables.items(), blobs, strict=True):
        entry = _nc_name(var) + struct.pack(">i", len(vdims))
        entry += b"".join(struct.pack(">i", names.index(d)) for d in vdims)
        entry += _nc_attrs(attrs) + struct.pack(">ii", 5, len(blob) + (-len(blob) % 4))
        entries.append(entry)
    var_list = struct.pack(">ii", 0x0B, len(variables))
    size = len(header) + len(var_list) + sum(len(e) + 4 for e in entries)
    offset = size
    for i, blob in enumerate(blobs):
        entries[i] += struct.pack(">i", offset)
        offset += len(blob) + (-len(blob) % 4)
    data = b"".join(blob + b"\0" * (-len(blob) % 4) for blob in blobs)
    path.write_bytes(header + var_list + b"".join(entries) + data)
    return path


CURVI_SHAPE = (12, 16)  # rows, cols


def curvilinear_grid() -> tuple[np.ndarray, np.ndarray]:
    """2-D longitudes and latitudes of a rotated, sheared grid (west Alps), north-up rows."""
    rows, cols = CURVI_SHAPE
    j, i = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
    lon = 6.0 + 0.10 * j + 0.02 * i
    lat = 47.0 - 0.08 * i + 0.015 * j
    return lon.astype(np.float32), lat.astype(np.float32)


def curvilinear_values() -> np.ndarray:
    """The variable of :func:`curvilinear_nc`: (rows, cols) float32."""
    rows, cols = CURVI_SHAPE
    return np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)


def curvilinear_nc(folder: Path, name: str = "curvi.nc") -> Path:
    """A CF NetCDF whose variable is located by 2-D lat/lon arrays (no x/y, no grid mapping)."""
    lon, lat = curvilinear_grid()
    return write_netcdf3(
        folder / name,
        {"y": CURVI_SHAPE[0], "x": CURVI_SHAPE[1]},
        {
            "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
            "temp": (
                ("y", "x"),
                curvilinear_values(),
                {"units": "K", "coordinates": "lat lon", "long_name": "temperature"},
            ),
        },  # fmt: skip
        {"Conventions": "CF-1.8"},
    )


NC_MEMBERS = 3
NC_TIMES = (0.0, 1.0)  # days since 2020-01-01


def ensemble_values() -> np.ndarray:
    """``tas`` of :func:`ensemble_nc`: (member, time, lat, lon) float32."""
    return np.arange(NC_MEMBERS * len(NC_TIMES) * 20, dtype=np.float32).reshape(
        NC_MEMBERS, len(NC_TIMES), 4, 5
    )


def ensemble_nc(folder: Path) -> Path:
    """A CF NetCDF ``tas(member, time, lat, lon)`` on a 1-degree lon/lat grid (10..15E, 37..41N)."""
    return write_netcdf3(
        folder / "ensemble.nc",
        {"member": NC_MEMBERS, "time": len(NC_TIMES), "lat": 4, "lon": 5},
        {
            "lat": (
                ("lat",),
                np.array([40.5, 39.5, 38.5, 37.5]),
                {"units": "degrees_north", "standard_name": "latitude"},
            ),
            "lon": (
                ("lon",),
                np.arange(5) + 10.5,
                {"units": "degrees_east", "standard_name": "longitude"},
            ),
            "time": (
                ("time",),
                np.array(NC_TIMES),
                {"units": "days since 2020-01-01", "standard_name": "time"},
            ),
            "member": (("member",), np.arange(NC_MEMBERS), {"long_name": "ensemble member"}),
            "tas": (("member", "time", "lat", "lon"), ensemble_values(), {"units": "K"}),
        },  # fmt: skip
    )


def projected_nc(folder: Path) -> Path:
    """A NetCDF ``h(y, x)`` on 1 km x/y coordinates (UTM 18N values) without a grid mapping."""
    return write_netcdf3(
        folder / "projected.nc",
        {"y": 4, "x": 5},
        {
            "x": (("x",), np.arange(5) * 1000.0 + 300500, {"units": "m", "axis": "X"}),
            "y": (("y",), np.arange(4)[::-1] * 1000.0 + 4000500, {"units": "m", "axis": "Y"}),
            "h": (("y", "x"), np.arange(20, dtype=np.float32).reshape(4, 5), {"units": "m"}),
        },
    )
