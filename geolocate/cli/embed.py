"""`geolocate embed` (filled in by its stage)."""
