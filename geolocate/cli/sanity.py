"""`geolocate sanity` (filled in by its stage)."""
