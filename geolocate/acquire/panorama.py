"""Perspective views cut from an equirectangular 360° capture (the 2:1 photos of Panoramax and action cams).

An equirectangular image maps longitude (-180°…180°, left to right, 0° at the centre column, the
camera's heading) and latitude (90°…-90°, top to bottom) linearly to pixels. A view is a pinhole
camera at the sphere's centre turned to `yaw_deg` from the heading: each of its pixels is a ray,
the ray's longitude/latitude pick a point of the capture, sampled bilinearly. With a known heading
the views are aimed at true north, east, south and west, so they line up with the four-view
locations the scout-sniper reads; without one they are aimed relative to the camera and carry no
compass angle.
"""

from __future__ import annotations

import math

import numpy as np


def view_azimuths(n_views: int, heading: float | None) -> list[tuple[float, float | None]]:
    """(yaw from the capture's centre, compass angle or None) of `n_views` evenly spaced views.

    With a heading the views face compass 0°, 360/n°, …; the yaw that reaches them is the
    compass angle minus the heading. Without one they face the centre, then every 360/n°.
    """
    step = 360.0 / n_views
    if heading is None or not math.isfinite(heading):
        return [(i * step, None) for i in range(n_views)]
    return [((i * step - heading) % 360.0, i * step) for i in range(n_views)]


def perspective_view(pano: np.ndarray, yaw_deg: float, fov_deg: float, size: int) -> np.ndarray:
    """A `size`×`size` pinhole view of the equirectangular `pano` (H×W×C uint8) turned `yaw_deg` right.

    Args:
        pano: the 360° capture, 2:1.
        yaw_deg: view direction, clockwise from the capture's centre column.
        fov_deg: horizontal (= vertical) field of view.
        size: side of the square view in pixels.
    """
    height, width = pano.shape[:2]
    focal = (size / 2) / math.tan(math.radians(fov_deg) / 2)
    steps = (np.arange(size) + 0.5 - size / 2) / focal
    x, y = np.meshgrid(steps, steps)  # x to the right, y down, z = 1 forward
    lon = math.radians(yaw_deg) + np.arctan2(x, 1.0)
    lat = -np.arctan2(y, np.hypot(x, 1.0))
    u = (lon / (2 * math.pi) + 0.5) * width - 0.5
    v = (0.5 - lat / math.pi) * height - 0.5
    return _bilinear(pano, u, v).astype(np.uint8)


def _bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample `image` at float pixel coordinates: wrapping around horizontally, clamped vertically."""
    height, width = image.shape[:2]
    u0, v0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = (u - u0)[..., None], (v - v0)[..., None]
    left, right = u0 % width, (u0 + 1) % width
    top, bottom = np.clip(v0, 0, height - 1), np.clip(v0 + 1, 0, height - 1)
    img = image.astype(np.float32)
    upper = img[top, left] * (1 - fu) + img[top, right] * fu
    lower = img[bottom, left] * (1 - fu) + img[bottom, right] * fu
    return np.clip(upper * (1 - fv) + lower * fv + 0.5, 0, 255)


def is_equirectangular(width: int, height: int, tolerance: float = 0.01) -> bool:
    """True for a 2:1 image (within `tolerance` of the ratio): how a 360° capture looks without metadata."""
    return height > 0 and abs(width / height - 2.0) <= 2.0 * tolerance
