"""livemosaic.adapters."""
