"""Pure geodesy on numpy arrays (torch versions live with the losses that need gradients)."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km; broadcasts over numpy arrays (degrees in)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def pairwise_haversine_km(lat_a, lon_a, lat_b, lon_b) -> np.ndarray:
    """Distance matrix [len(a), len(b)] in km."""
    return haversine_km(
        np.asarray(lat_a)[:, None], np.asarray(lon_a)[:, None], np.asarray(lat_b)[None, :], np.asarray(lon_b)[None, :]
    )


def offset_m(lat0: float, lon0: float, north_m, east_m) -> tuple[np.ndarray, np.ndarray]:
    """Move from (lat0, lon0) by metres north and east (equirectangular, fine below ~100 km)."""
    dlat = np.asarray(north_m) / 111_320.0
    dlon = np.asarray(east_m) / (111_320.0 * np.cos(np.radians(lat0)))
    return lat0 + dlat, lon0 + dlon


def spherical_mean(lat, lon, weights=None):
    """Centroid of points on the sphere (weighted mean of unit vectors, projected back) over the last axis.

    Robust near the antimeridian, where averaging longitudes is wrong. 1-D input gives a
    (lat, lon) pair of floats; [..., K] input gives two arrays [...] (one centroid per row).
    """
    la, lo = np.radians(np.asarray(lat, dtype=np.float64)), np.radians(np.asarray(lon, dtype=np.float64))
    w = np.ones_like(la) if weights is None else np.asarray(weights, dtype=np.float64)
    xyz = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    x, y, z = (xyz * w).sum(axis=-1) / w.sum(axis=-1)
    mean_lat, mean_lon = np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))
    return (float(mean_lat), float(mean_lon)) if np.ndim(mean_lat) == 0 else (mean_lat, mean_lon)


def destination(lat: float, lon: float, bearing_deg, distance_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Points `distance_km` from (lat, lon) along great circles at `bearing_deg` (degrees from north)."""
    phi, lam = np.radians(lat), np.radians(lon)
    theta, delta = np.radians(np.asarray(bearing_deg, dtype=np.float64)), distance_km / EARTH_RADIUS_KM
    phi2 = np.arcsin(np.sin(phi) * np.cos(delta) + np.cos(phi) * np.sin(delta) * np.cos(theta))
    lam2 = lam + np.arctan2(np.sin(theta) * np.sin(delta) * np.cos(phi), np.cos(delta) - np.sin(phi) * np.sin(phi2))
    return np.degrees(phi2), (np.degrees(lam2) + 540.0) % 360.0 - 180.0


def is_position(lat, lon) -> bool:
    """True when (lat, lon) is a finite point on Earth: |lat| <= 90 and |lon| <= 180.

    The one "is this position valid?" every reader asks (EXIF, CSV tables, API records, sidecars,
    indexes, `--lat/--lon`): H3, the haversine and every table assume it, and a NaN, an infinity
    or a 91 would only fail much later. Anything but a real number (None, a bool, a string) is
    not a position. Arrays (an index's positions) are checked as a whole: True when every pair is one.
    """
    if isinstance(lat, np.ndarray) or isinstance(lon, np.ndarray):
        lat, lon = np.asarray(lat), np.asarray(lon)
        if lat.dtype.kind not in "fiu" or lon.dtype.kind not in "fiu":
            return False
        return bool(np.all((np.abs(lat) <= 90) & (np.abs(lon) <= 180)))  # NaN compares False
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in (lat, lon)):
        return False
    return bool(-90 <= lat <= 90 and -180 <= lon <= 180)  # NaN compares False, infinities fall outside
