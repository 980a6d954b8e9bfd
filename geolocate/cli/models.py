"""`geolocate models` (filled in by its stage)."""
