"""What a photo's own EXIF says about where, when and which way it was taken.

Pillow's `getexif()` is enough: the GPS IFD (0x8825) holds latitude/longitude as degree-minute-
second rationals with an N/S or E/W reference, `GPSImgDirection` the heading; the Exif IFD
(0x8769) holds `DateTimeOriginal` and, on recent cameras, its UTC offset. A position that is
missing, NaN, exactly 0,0 (a receiver without a fix) or out of range is a reason to skip the
photo, never something to guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769
_LAT_REF, _LAT, _LON_REF, _LON, _DIRECTION = 1, 2, 3, 4, 17
_MAKE, _MODEL, _ARTIST, _COPYRIGHT, _DATETIME = 271, 272, 315, 33432, 306
_DATETIME_ORIGINAL, _OFFSET_ORIGINAL = 36867, 36881


@dataclass
class PhotoFacts:
    """What the EXIF block gives; `problem` says why the photo has no usable position."""

    lat: float | None = None
    lon: float | None = None
    heading: float | None = None
    captured_at: datetime | None = None
    camera: str | None = None
    artist: str | None = None
    copyright: str | None = None
    problem: str | None = None


def read_facts(exif: Any) -> PhotoFacts:
    """Facts from a Pillow `Image.Exif` (empty when the photo has none)."""
    facts = PhotoFacts(camera=_camera(exif), artist=_text(exif.get(_ARTIST)), copyright=_text(exif.get(_COPYRIGHT)))
    sub = exif.get_ifd(_EXIF_IFD) if len(exif) else {}
    facts.captured_at = parse_exif_time(sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME), sub.get(_OFFSET_ORIGINAL))
    gps = exif.get_ifd(_GPS_IFD) if len(exif) else {}
    if not len(exif):
        facts.problem = "no EXIF"
    elif not gps or _LAT not in gps or _LON not in gps:
        facts.problem = "no GPS position in EXIF"
    else:
        lat, lon = _degrees(gps.get(_LAT), gps.get(_LAT_REF), "S"), _degrees(gps.get(_LON), gps.get(_LON_REF), "W")
        facts.problem = position_problem(lat, lon)
        if facts.problem is None:
            facts.lat, facts.lon = lat, lon
        facts.heading = heading(gps.get(_DIRECTION))
    return facts


def position_problem(lat: float | None, lon: float | None) -> str | None:
    """Why (lat, lon) is not a usable position, or None."""
    if lat is None or lon is None:
        return "GPS position unreadable"
    if math.isnan(lat) or math.isnan(lon):
        return "GPS position is NaN"
    if lat == 0 and lon == 0:
        return "GPS position is 0,0 (no fix)"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "GPS position out of range"
    return None


def heading(value: Any) -> float | None:
    """A compass heading in [0, 360), None when absent or not a finite number."""
    try:
        degrees = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return degrees % 360.0 if math.isfinite(degrees) else None


def parse_exif_time(value: Any, offset: Any = None) -> datetime | None:
    """'YYYY:MM:DD HH:MM:SS' (+ '+HH:MM' offset) as UTC; without an offset the clock is taken as UTC."""
    try:
        local = datetime.strptime(str(value).strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    shift = _offset(offset)
    return (local - shift).replace(tzinfo=timezone.utc)


def _offset(value: Any) -> timedelta:
    text = str(value or "").strip()
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":" or not (text[1:3] + text[4:]).isdigit():
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:]))


def _degrees(dms: Any, ref: Any, negative: str) -> float | None:
    try:
        d, m, s = (float(v) for v in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60.0 + s / 3600.0
    return -value if str(ref or "").strip().upper() == negative else value


def _camera(exif: Any) -> str | None:
    parts = [_text(exif.get(tag)) for tag in (_MAKE, _MODEL)]
    return " ".join(p for p in parts if p) or None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip() if value is not None else ""
    return text or None
