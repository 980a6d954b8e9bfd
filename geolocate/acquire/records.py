"""Small checks every source applies to the records an API returns (one home for each rule)."""

from __future__ import annotations

from typing import Any


def is_position(coords: Any) -> bool:
    """True for a GeoJSON `[lon, lat, ...]` of finite numbers in range."""
    return isinstance(coords, (list, tuple)) and len(coords) >= 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in coords[:2]) \
        and -180 <= coords[0] <= 180 and -90 <= coords[1] <= 90


def text(value: Any) -> str | None:
    """`value` as a string, None kept."""
    return None if value is None else str(value)


def number(value: Any) -> float | None:
    """`value` as a float when it is a number (not a bool), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
