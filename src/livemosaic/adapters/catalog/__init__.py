"""livemosaic.adapters.catalog."""
