"""`geolocate ship` (filled in by its stage)."""
