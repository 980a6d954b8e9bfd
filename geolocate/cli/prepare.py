"""`geolocate prepare` (filled in by its stage)."""
