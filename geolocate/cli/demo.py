"""`geolocate demo` (filled in by its stage)."""
