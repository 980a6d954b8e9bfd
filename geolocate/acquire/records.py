"""Small checks every source applies to the records an API returns (one home for each rule)."""

from __future__ import annotations

import math
from typing import Any

from geolocate.geo import is_position as is_lat_lon


def is_position(coords: Any) -> bool:
    """True for a GeoJSON `[lon, lat, ...]` of finite numbers in range."""
    return isinstance(coords, (list, tuple)) and len(coords) >= 2 and is_lat_lon(coords[1], coords[0])


def text(value: Any) -> str | None:
    """`value` as a string, None kept."""
    return None if value is None else str(value)


def number(value: Any) -> float | None:
    """`value` as a float when it is a finite number (not a bool, NaN or an infinity), else None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except OverflowError:  # an integer beyond float range
        return None
    return out if math.isfinite(out) else None
