"""`geolocate cells` (filled in by its stage)."""
