"""Raster adapters (rasterio/GDAL): inspect files into items, read warped pixel blocks,
encode images, resolve and transform spatial references.

* :class:`RasterioSource` implements ``core.ports.RasterSource``.
* :class:`RasterioProjector` implements ``core.ports.Projector``.
* :class:`RasterEncoder` implements ``core.ports.ImageEncoder``.
"""

from livemosaic.adapters.raster.encode import RasterEncoder
from livemosaic.adapters.raster.projector import RasterioProjector
from livemosaic.adapters.raster.source import RasterioSource

__all__ = ["RasterEncoder", "RasterioProjector", "RasterioSource"]
