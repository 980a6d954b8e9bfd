"""`geolocate train` (filled in by its stage)."""
