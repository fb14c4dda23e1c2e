"""Reading NetCDF/CF metadata as GDAL's netCDF driver exposes it (``<var>#<attr>`` tags).

Helpers to tell data variables from coordinate/bounds/mask helpers, find the time and
vertical dimensions, recognise lon/lat grids without a grid mapping, and look up CF time
bounds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from livemosaic.adapters.raster.cf_time import CFTimeError, CFTimeUnits
from livemosaic.adapters.raster.confine import Confinement
from livemosaic.adapters.raster.crs import quiet_env
from livemosaic.adapters.raster.dataset import open_dataset
from livemosaic.errors import RasterRejected

COORDINATE_NAMES = frozenset(
    {"lat", "lon", "latitude", "longitude", "nav_lat", "nav_lon", "x", "y", "time"}
)
HELPER_STANDARD_NAMES = frozenset(
    {
        "latitude",
        "longitude",
        "grid_latitude",
        "grid_longitude",
        "projection_x_coordinate",
        "projection_y_coordinate",
        "time",
        "land_binary_mask",
        "sea_binary_mask",
    }
)
TIME_NAMES = frozenset({"time", "t", "valid_time", "times", "date", "time_counter"})
Z_NAMES = frozenset(
    {
        "depth",
        "z",
        "lev",
        "level",
        "levels",
        "height",
        "plev",
        "s_rho",
        "s_w",
        "sigma",
        "altitude",
        "alt",
        "pressure",
        "isobaric",
        "pressure_level",
        "bottom_top",
        "deptht",
        "depthu",
        "depthv",
        "depthw",
        "zlev",
        "olevel",
        "nav_lev",
        "elevation",
    }
)
Z_STANDARD_NAMES = frozenset(
    {
        "depth",
        "height",
        "altitude",
        "air_pressure",
        "model_level_number",
        "ocean_s_coordinate_g1",
        "ocean_s_coordinate_g2",
        "ocean_sigma_coordinate",
        "atmosphere_sigma_coordinate",
        "atmosphere_hybrid_sigma_pressure_coordinate",
        "atmosphere_hybrid_height_coordinate",
    }
)
_DEG_EAST = frozenset(
    {"degrees_east", "degree_east", "degrees_e", "degree_e", "degreee", "degreese"}
)
_DEG_NORTH = frozenset(
    {"degrees_north", "degree_north", "degrees_n", "degree_n", "degreen", "degreesn"}
)
_UNIT_ALIASES = {"meters": "m", "metres": "m", "meter": "m", "metre": "m"}
_BOUNDS = re.compile(r"_(bnds|bounds|bnd)$")


def parse_list(text: str) -> list[str]:
    """``{time,depth}`` -> ["time", "depth"]."""
    return [p.strip() for p in text.strip().strip("{}").split(",") if p.strip()]


def subdataset_uri(driver: str, root_uri: str, subdataset: str) -> str:
    """The subdataset string to open (``netcdf:"<file>":<var>`` for NetCDF)."""
    if driver == "netCDF":
        return f'netcdf:"{root_uri}":{subdataset.rsplit(":", 1)[-1]}'
    return subdataset


def helper_names(all_tags: Iterable[Mapping[str, str]]) -> set[str]:
    """Variables named by ``coordinates``, ``bounds``, ``climatology`` or ``grid_mapping``."""
    names: set[str] = set()
    for tags in all_tags:
        for key, value in tags.items():
            attr = key.rsplit("#", 1)[-1]
            if attr in ("coordinates", "bounds", "climatology", "grid_mapping"):
                names.update(tok.rstrip(":") for tok in str(value).split() if tok.rstrip(":"))
    return names


def is_helper(var: str, tags: Mapping[str, str], helpers: set[str]) -> bool:
    """True for coordinate, bounds, grid-mapping and mask variables."""
    base = var.rsplit("/", 1)[-1]
    low = base.lower()
    if var in helpers or base in helpers or low in COORDINATE_NAMES:
        return True
    if _BOUNDS.search(low) or low == "mask" or low.startswith("mask_"):
        return True
    return tags.get(f"{base}#standard_name", "").lower() in HELPER_STANDARD_NAMES


def dim_roles(dims: list[str], tags: Mapping[str, str]) -> dict[str, str]:
    """Role of each extra dimension: "time", "z" (the first vertical one) or "other".

    The time dimension is the first one with CF time units (``<unit> since <date>``) that is
    marked as time (``axis=T``, ``standard_name=time`` or a usual name), else the first one
    with CF time units at all.
    """

    def since(d: str) -> bool:
        return " since " in tags.get(f"{d}#units", "")

    def marked(d: str) -> bool:
        return (
            tags.get(f"{d}#axis", "").upper() == "T"
            or tags.get(f"{d}#standard_name", "").lower() == "time"
            or d.lower() in TIME_NAMES
        )

    time_dim = next((d for d in dims if since(d) and marked(d)), None)
    if time_dim is None:
        time_dim = next((d for d in dims if since(d)), None)
    roles: dict[str, str] = {}
    for d in dims:
        std = tags.get(f"{d}#standard_name", "").lower()
        zish = (
            tags.get(f"{d}#axis", "").upper() == "Z"
            or f"{d}#positive" in tags
            or d.lower() in Z_NAMES
            or std in Z_STANDARD_NAMES
        )
        if d == time_dim:
            roles[d] = "time"
        elif zish and "z" not in roles.values():
            roles[d] = "z"
        else:
            roles[d] = "other"
    return roles


def looks_lonlat(tags: Mapping[str, str], ds: Any) -> bool:
    """True for a grid on 1-D lon/lat coordinates without a grid mapping (treat as EPSG:4326)."""
    lon = lat = False
    for key, value in tags.items():
        attr = key.rsplit("#", 1)[-1]
        v = str(value).strip().lower()
        if (attr == "standard_name" and v == "longitude") or (attr == "units" and v in _DEG_EAST):
            lon = True
        if (attr == "standard_name" and v == "latitude") or (attr == "units" and v in _DEG_NORTH):
            lat = True
        if attr == "_CoordinateAxisType":
            lon = lon or v == "lon"
            lat = lat or v == "lat"
    if not (lon and lat):
        return False
    b = ds.bounds
    xs, ys = (b.left, b.right), (b.bottom, b.top)
    return (
        all(-360.0 <= x <= 360.0 for x in xs)
        and all(-90.5 <= y <= 90.5 for y in ys)
        and not ds.transform.is_identity
    )


def norm_unit(unit: str) -> str:
    """Short spelling of common units (meters -> m)."""
    return _UNIT_ALIASES.get(unit.strip().lower(), unit.strip())


class TimeBounds:
    """CF time bounds of a NetCDF file, loaded once per bounds variable."""

    def __init__(self, path: str, root_uri: str, driver: str, confine: Confinement) -> None:
        self.confine = confine
        self.path = path
        self.root_uri = root_uri
        self.driver = driver
        self._cache: dict[str, npt.NDArray[np.float64] | None] = {}

    def end_of(self, var: str | None, value: float, units: CFTimeUnits) -> int | None:
        """End of the bounds interval holding ``value`` (epoch ms), if the file has bounds."""
        if not var or self.driver != "netCDF":
            return None
        if var not in self._cache:
            self._cache[var] = self._load(var)
        arr = self._cache[var]
        if arr is None:
            return None
        lo = arr.min(axis=1)
        hi = arr.max(axis=1)
        inside = np.flatnonzero((lo <= value) & (value < hi))
        if inside.size == 0:
            inside = np.flatnonzero((lo <= value) & (value <= hi))
        if inside.size == 0:
            return None
        try:
            return units.to_epoch_ms(float(hi[inside[0]]))
        except CFTimeError:
            return None

    def _load(self, var: str) -> npt.NDArray[np.float64] | None:
        try:
            uri = f'netcdf:"{self.root_uri}":{var}'
            ds = open_dataset(uri, confine=self.confine, path=self.path)
        except RasterRejected:
            return None
        try:
            with quiet_env():
                arr = np.asarray(ds.read(1), dtype=np.float64)
        except Exception:
            return None
        finally:
            ds.close()
        if arr.ndim != 2 or 2 not in arr.shape:
            return None
        return arr if arr.shape[1] == 2 else arr.T
