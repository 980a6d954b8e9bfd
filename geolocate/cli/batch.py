"""`geolocate batch` (filled in by its stage)."""
