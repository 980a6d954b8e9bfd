"""Small checks every source applies to the records an API returns (one home for each rule)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
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


# Capture times outside these bounds are not a camera's: year 1, 9999 or an epoch in the year 30 000.
_FIRST_MS, _LAST_MS = -2_208_988_800_000, 4_102_444_800_000  # 1900-01-01 and 2100-01-01, UTC


def epoch_ms(value: Any) -> int | None:
    """Milliseconds since the epoch when `value` is an integer time between 1900 and 2100, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and _FIRST_MS <= value < _LAST_MS else None


def iso_ms(value: Any) -> int | None:
    """An ISO 8601 time (no offset means UTC) as milliseconds since the epoch, None when it is not
    one or lies outside 1900-2100 (year 1 with an offset would not even convert to UTC)."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        ms = int((when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None
    return epoch_ms(ms)


def in_box(record: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
    """True when a candidate row's position lies in `box` (min_lon, min_lat, max_lon, max_lat), edges included."""
    return box[0] <= record["lon"] <= box[2] and box[1] <= record["lat"] <= box[3]
