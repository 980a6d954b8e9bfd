"""`geolocate predict` (filled in by its stage)."""
