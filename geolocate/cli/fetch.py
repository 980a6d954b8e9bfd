"""`geolocate fetch` (filled in by its stage)."""
