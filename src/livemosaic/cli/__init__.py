"""livemosaic.cli."""
