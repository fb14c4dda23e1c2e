"""livemosaic.core."""
