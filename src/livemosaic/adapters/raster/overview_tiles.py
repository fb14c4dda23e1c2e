"""Writing mosaic-dataset overview tiles as Cloud-Optimized GeoTIFFs (``OverviewWriter``).

A tile holds the composed bands plus an alpha band (255 where the mosaic had a valid pixel,
0 elsewhere), so the reader treats transparent areas as NoData whatever the pixel type; the
COG driver adds internal overviews (2x, 4x, … down to one 256-pixel block) and DEFLATE
compression. The file is written under a temporary name and renamed into place, so a reader
never opens half a tile.

Floating-point tiles hold NaN under the transparent pixels. The averages that make the COG's
internal overviews, and the bilinear reads that make the next level, weigh each band without
its alpha: a fill value (0, or an item's -9999) would be blended into the valid pixels beside
a hole, while NaN either stays out of the average or makes the pixel NaN, which the reader
counts as NoData — a hole's edge may grow by a pixel at coarse scales, no value is wrong.

GDAL leaves the pixels an alpha band makes transparent out of those averages and reads only
when it takes the alpha band for the bands' mask: with one or three 8- or 16-bit unsigned
bands before it (an RGB image). Other integer tiles with transparent pixels (a 4-band image,
16-bit signed data) also get an internal per-dataset mask equal to the alpha, which GDAL
honours whatever the band count and pixel type; without it the 0 under the transparent
pixels would darken the valid pixels beside a hole. Nearest-neighbour reads and the alpha
band are unchanged.
"""

from __future__ import annotations

import os

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.io import MemoryFile

from livemosaic.adapters.raster.crs import crs_from_key, quiet_env
from livemosaic.core.models import Extent
from livemosaic.core.ports import PixelBlock

BLOCK_SIZE = 256


class CogTileWriter:
    """Writes overview tiles (implements ``core.overview_build.OverviewWriter``)."""

    def __init__(self, compress: str = "DEFLATE", resampling: str = "average") -> None:
        self.compress = compress
        self.resampling = resampling

    def write_tile(self, path: str, block: PixelBlock, extent: Extent, crs: str) -> None:
        """Write ``block`` covering ``extent`` (in ``crs``) to ``path`` as a COG with alpha."""
        bands, rows, cols = block.shape
        data = block.data
        if data.dtype == np.bool_ or np.issubdtype(data.dtype, np.complexfloating):
            data = data.astype(np.float32)
        holes = not bool(block.valid.all())
        floating = np.issubdtype(data.dtype, np.floating)
        if floating and holes:
            data = np.where(block.valid, data, np.array(np.nan, dtype=data.dtype))
        transform = Affine(
            extent.width / cols, 0.0, extent.xmin, 0.0, -extent.height / rows, extent.ymax
        )
        top = 255
        if np.issubdtype(data.dtype, np.integer):
            top = min(top, int(np.iinfo(data.dtype.name).max))
        alpha = np.where(block.valid, top, 0).astype(data.dtype)
        profile = {
            "driver": "GTiff",
            "width": cols,
            "height": rows,
            "count": bands + 1,
            "dtype": data.dtype.name,
            "crs": crs_from_key(crs),
            "transform": transform,
        }
        part = path + ".part"
        with quiet_env(), MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(data, indexes=list(range(1, bands + 1)))
                dst.write(alpha, bands + 1)
                interp = list(dst.colorinterp)
                interp[-1] = ColorInterp.alpha
                dst.colorinterp = interp
                if holes and not floating and MaskFlags.per_dataset not in dst.mask_flag_enums[0]:
                    dst.write_mask(block.valid)  # GDAL does not take the alpha for the mask
                if block.band_names and len(block.band_names) == bands:
                    for i, name in enumerate(block.band_names, start=1):
                        dst.set_band_description(i, name)
            with mem.open() as src:
                rasterio.shutil.copy(
                    src,
                    part,
                    driver="COG",
                    compress=self.compress,
                    blocksize=BLOCK_SIZE,
                    overview_resampling=self.resampling,
                    bigtiff="IF_SAFER",
                )
        os.replace(part, path)


__all__ = ["CogTileWriter"]
