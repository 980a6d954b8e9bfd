"""What a photo's own EXIF says about where, when and which way it was taken.

Pillow's `getexif()` is enough: the GPS IFD (0x8825) holds latitude/longitude as degree-minute-
second rationals with an N/S or E/W reference, `GPSImgDirection` the heading; the Exif IFD
(0x8769) holds `DateTimeOriginal` and, on recent cameras, its UTC offset. A position that is
missing, NaN, exactly 0,0 (a receiver without a fix) or out of range is a reason to skip the
photo, never something to guess. This is the one EXIF reader: `import` asks `read_facts`,
`predict` asks `exif_latlon` for a photo's true position.

An EXIF block is whatever the file says: dates in year 1 or 9999 with an offset, rationals with a
zero denominator, text with control characters. Each field that does not read is None, and
nothing here raises for a photo's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from geolocate.geo import is_position

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
    if lat != lat or lon != lon:
        return "GPS position is NaN"
    if lat == 0 and lon == 0:
        return "GPS position is 0,0 (no fix)"
    return None if is_position(lat, lon) else "GPS position out of range"


def exif_latlon(path: Path | str) -> tuple[float, float] | None:
    """(lat, lon) from a photo file's EXIF GPS, or None when absent, unusable or unreadable."""
    from geolocate.data.images import DECODE_ERRORS, open_photo

    try:
        with open_photo(Path(path)) as image:
            return image_latlon(image)
    except DECODE_ERRORS:
        return None


def image_latlon(image: Any) -> tuple[float, float] | None:
    """(lat, lon) from an opened image's EXIF GPS (predict reads it from the decode it already did)."""
    try:
        facts = read_facts(image.getexif())
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser has no closed set of errors for a crafted block
        return None
    return (facts.lat, facts.lon) if facts.problem is None else None


def heading(value: Any) -> float | None:
    """A compass heading in [0, 360), None when absent or not a finite number."""
    try:
        degrees = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return degrees % 360.0 if abs(degrees) < float("inf") else None  # NaN compares False too


def parse_exif_time(value: Any, offset: Any = None) -> datetime | None:
    """'YYYY:MM:DD HH:MM:SS' (+ '+HH:MM' offset) as UTC; without an offset the clock is taken as UTC."""
    try:
        local = datetime.strptime(str(value).strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return as_utc(local, _offset(offset))


def as_utc(when: datetime, offset: timedelta | None = None) -> datetime | None:
    """`when` in UTC (`offset` is its clock's offset when it has no tzinfo; none means UTC), or
    None when the shift leaves the calendar (year 1 minus an hour, year 9999 plus one)."""
    try:
        if when.tzinfo is not None:
            return when.astimezone(timezone.utc)
        return (when - (offset or timedelta(0))).replace(tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        return None


def _offset(value: Any) -> timedelta:
    text = str(value or "").strip()
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":" or not (text[1:3] + text[4:]).isdigit():
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:]))


def _degrees(dms: Any, ref: Any, negative: str) -> float | None:
    try:
        d, m, s = (float(v) for v in dms)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    value = d + m / 60.0 + s / 3600.0
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -value if str(ref or "").strip().upper() == negative else value


def _camera(exif: Any) -> str | None:
    parts = [_text(exif.get(tag)) for tag in (_MAKE, _MODEL)]
    return " ".join(p for p in parts if p) or None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip() if value is not None else ""
    return text or None
