"""Global grids with coarse cells, written with GDAL as weather models write them.

Their cell edges pass the poles (a 90-degree grid spans latitudes -135..135) and their
longitudes may run 0..360: the cases of the geographic-extent tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.io import MemoryFile
from rasterio.shutil import copy as gdal_copy
from rasterio.transform import from_origin

# name: (driver, file name, columns, rows, west edge, north edge, cell size in degrees)
GRIDS = {
    "g90": ("GRIB", "global_90deg.grib2", 4, 3, -45.0, 135.0, 90.0),
    "gfs": ("netCDF", "gfs_2p5deg.nc", 144, 73, -1.25, 91.25, 2.5),
}


def write_grid(path: Path, driver: str, cols: int, rows: int, west: float, north: float,
               cell: float) -> None:  # fmt: skip
    """A one-band float32 grid in EPSG:4326, written by GDAL's ``driver`` (GRIB, netCDF)."""
    data = (np.arange(cols * rows, dtype="float32").reshape(1, rows, cols) % 50) + 250
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "float32",
               "crs": "EPSG:4326", "transform": from_origin(west, north, cell, cell)}  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(data)
        with mem.open() as ds:
            gdal_copy(ds, str(path), driver=driver)
