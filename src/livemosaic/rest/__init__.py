"""livemosaic.rest."""
