"""`geolocate split` (filled in by its stage)."""
