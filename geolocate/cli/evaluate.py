"""`geolocate evaluate` (filled in by its stage)."""
