"""livemosaic.adapters.raster."""
