"""Ground truth from a photo's EXIF GPS block, when the camera wrote one."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

_GPS_IFD = 0x8825


def exif_latlon(path: Path | str) -> tuple[float, float] | None:
    """(lat, lon) in degrees from the EXIF GPS of the file at `path`, or None when absent or malformed."""
    try:
        with Image.open(path) as img:
            return image_latlon(img)
    except (OSError, ValueError, SyntaxError):
        return None


def image_latlon(img: Image.Image) -> tuple[float, float] | None:
    """(lat, lon) from the EXIF GPS of an opened image (predict reads it from the decode it already did)."""
    try:
        gps = img.getexif().get_ifd(_GPS_IFD)
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lon = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, OSError, SyntaxError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon


def _degrees(dms, ref, negative: str) -> float:
    d, m, s = (float(x) for x in dms)
    value = d + m / 60 + s / 3600
    ref = ref.decode() if isinstance(ref, bytes) else str(ref)
    return -value if ref.strip().upper() == negative else value
