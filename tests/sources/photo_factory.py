"""Geotagged test photos made by code: a JPEG with the EXIF a phone or action cam writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def dms(value: float) -> tuple[float, float, float]:
    if value != value:  # NaN, as a broken GPS writes it: 0/0 rationals
        from PIL.TiffImagePlugin import IFDRational

        return (IFDRational(0, 0),) * 3
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    return float(d), float(m), (value - d - m / 60) * 3600


def geotagged(path: Path, lat: float | None, lon: float | None, *, when: str | None = "2024:05:01 10:00:00", camera: str = "Cam X",
              heading: float | None = None, size: tuple[int, int] = (64, 48), seed: int = 0, artist: str | None = None,
              copyright: str | None = None) -> Path:
    """Write a JPEG at `path` whose EXIF holds the position (none when lat is None), time and heading."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[271], exif[272] = camera.split()[0], camera
    if artist:
        exif[315] = artist
    if copyright:
        exif[33432] = copyright
    if when:
        exif[306] = when
        exif.get_ifd(0x8769)[36867] = when
    if lat is not None:
        gps = {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}
        if heading is not None:
            gps[17] = heading
        exif[0x8825] = gps
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", exif=exif)
    return path
