"""Draw one synthetic photo: a pinhole camera looking into a `street.build_street` street.

The camera stands on the road at a random height and looks `yaw` degrees off the street axis
(0 = down the street; 90 = at the right-hand facades), so the four views of a location show
different parts of one 3-D street. Facades are shaded by the sun (its azimuth from the capture
hour), far things fade into the sky's haze, and per-photo noise (viewpoint, zoom, exposure,
colour cast, sensor noise) makes two photos of one place differ like two real ones.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from geolocate.synth.street import DIAMOND, DISC, QUAD, SQUARE, TRIANGLE, Primitives, build_street, hsv

NEAR_M = 0.25
FAR_M = 90.0
JPEG_QUALITY = 90


@dataclass(frozen=True)
class View:
    """What one photo sees: the street's seed, the camera's direction and the photo's own seed."""

    street_seed: tuple[int, ...]
    photo_seed: tuple[int, ...]
    yaw_deg: float  # compass angle minus the street's heading
    compass_deg: float
    hour_utc: float
    two_sided: bool  # the street extends behind the camera (four-view locations)


def render_jpegs(look: dict[str, float], views: list[View], size: int) -> list[bytes]:
    """The photos of one location's views as JPEG bytes (deterministic for the same arguments).

    The views share one street (same `street_seed`), so it is built once for all of them.
    """
    street = build_street(look, np.random.default_rng(views[0].street_seed), FAR_M, views[0].two_sided)
    jpegs = []
    for view in views:
        buffer = io.BytesIO()
        render(look, view, size, street).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        jpegs.append(buffer.getvalue())
    return jpegs


def render(look: dict[str, float], view: View, size: int, street: Primitives | None = None) -> Image.Image:
    """Draw the photo of `view` at a location whose appearance is `look` (in `street` when given)."""
    if street is None:
        street = build_street(look, np.random.default_rng(view.street_seed), FAR_M, view.two_sided)
    photo_rng = np.random.default_rng(view.photo_seed)
    camera = _camera(view, size, photo_rng)
    sky_top, horizon = _sky_colours(look)
    image = Image.fromarray(_sky(size, camera["cy"], sky_top, horizon))
    draw = ImageDraw.Draw(image)
    _clouds(draw, look, photo_rng, size, camera["cy"])
    _draw_primitives(draw, street, camera, size, horizon, _sun_azimuth(view.hour_utc), view.compass_deg - view.yaw_deg)
    return Image.fromarray(_photo_noise(np.asarray(image), photo_rng))


def _camera(view: View, size: int, rng: np.random.Generator) -> dict[str, float]:
    """Per-photo viewpoint: a small yaw and pitch error, zoom, height and sideways position."""
    yaw = math.radians(view.yaw_deg + rng.normal(0, 4.0))
    return {
        "sin": math.sin(yaw), "cos": math.cos(yaw),
        "f": size * float(rng.uniform(0.55, 0.8)),
        "cx": size / 2, "cy": size * float(rng.uniform(0.4, 0.52)),
        "height": float(rng.uniform(1.3, 2.3)), "x": float(rng.uniform(-1.5, 1.5)),
    }


def _sky_colours(look: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    top = hsv(0.52 + 0.14 * look["sky_hue"], 0.2 + 0.45 * look["sky_light"], 0.7 + 0.3 * look["sky_light"])
    return top, top * 0.35 + hsv(0.1, 0.1, 0.95) * 0.65


def _sky(size: int, cy: float, top: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    t = np.clip(np.arange(size, dtype=np.float64) / max(cy, 1.0), 0, 1)[:, None]
    rows = top[None] * (1 - t) + horizon[None] * t
    return np.repeat(rows[:, None, :], size, axis=1).astype(np.uint8)


def _clouds(draw: ImageDraw.ImageDraw, look, rng: np.random.Generator, size: int, cy: float) -> None:
    for _ in range(int(6 * look["clouds"] * rng.uniform(0.5, 1.5))):
        x, y = rng.uniform(0, size), rng.uniform(0, cy * 0.8)
        w, h = size * rng.uniform(0.08, 0.25), size * rng.uniform(0.03, 0.07)
        draw.ellipse([x - w, y - h, x + w, y + h], fill=(245, 245, 248))


def _sun_azimuth(hour_utc: float) -> float:
    """Compass azimuth of the sun over France: east in the morning, south at ~13:00 local."""
    return 180.0 + 15.0 * (hour_utc + 1.0 - 13.0)


def _to_camera(verts: np.ndarray, camera: dict[str, float]) -> np.ndarray:
    """World → camera coordinates (right, up, forward) for an array [..., 3]."""
    x, y, z = verts[..., 0] - camera["x"], verts[..., 1] - camera["height"], verts[..., 2]
    return np.stack([x * camera["cos"] - z * camera["sin"], y, x * camera["sin"] + z * camera["cos"]], axis=-1)


def _draw_primitives(draw, prims: Primitives, camera, size: int, haze_colour, sun_az: float, heading: float) -> None:
    """Painter's algorithm: by layer, then far groups (a building, a tree) before near ones."""
    verts, meta = prims.arrays()
    kind, radius, layer, group, facing = meta[:, 3], meta[:, 4], meta[:, 5], meta[:, 6].astype(int), meta[:, 7]
    cam = _to_camera(verts, camera)
    depth = cam[..., 2].mean(axis=1)
    group_depth = np.bincount(group, weights=depth, minlength=prims.n_groups) / np.maximum(
        np.bincount(group, minlength=prims.n_groups), 1)
    colours = _lit_colours(meta[:, :3], facing, depth, haze_colour, sun_az, heading).astype(int).tolist()
    in_front = cam[..., 2].min(axis=1) > NEAR_M
    screen = _project(np.where(in_front[:, None, None], cam, 1.0), camera)  # [n, 4, 2]; dummies where clipped
    visible = _on_screen(screen, size) | ~in_front
    visible &= cam[..., 2].max(axis=1) > NEAR_M  # not entirely behind the camera
    order = np.lexsort((np.arange(len(depth)), -group_depth[group], layer))
    screen_lists = screen.tolist()
    for i in order[visible[order]]:
        fill = tuple(colours[i])
        if kind[i] == QUAD:
            points = screen_lists[i] if in_front[i] else _project(_clip_near(cam[i])[None], camera)[0].tolist()
            if len(points) >= 3:
                draw.polygon([tuple(p) for p in points], fill=fill)
        elif in_front[i]:
            _blob(draw, int(kind[i]), screen_lists[i][0], camera["f"] * radius[i] / cam[i, 0, 2], fill)


def _on_screen(screen: np.ndarray, size: int) -> np.ndarray:
    """Quads whose screen bounding box meets the image and is at least a fraction of a pixel."""
    low, high = screen.min(axis=1), screen.max(axis=1)
    meets = (high > 0).all(axis=1) & (low < size).all(axis=1)
    return meets & ((high - low).prod(axis=1) > 0.15)


def _lit_colours(colours, facing, depth, haze_colour, sun_az: float, heading: float) -> np.ndarray:
    """Facades facing the sun are brighter; everything fades towards the horizon colour with depth."""
    normal_az = heading + 90.0 * facing  # a facade facing +x looks to the right of the street
    light = np.where(facing != 0, 0.8 + 0.25 * np.cos(np.radians(normal_az - sun_az)), 1.0)
    haze = (1 - np.exp(-np.abs(depth) / 140.0))[:, None]
    return np.clip(colours * light[:, None] * (1 - haze) + haze_colour[None] * haze, 0, 255)


def _clip_near(poly: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon to the half-space in front of the camera."""
    out = []
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        a_in, b_in = a[2] > NEAR_M, b[2] > NEAR_M
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (NEAR_M - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out).reshape(-1, 3)


def _project(cam: np.ndarray, camera) -> np.ndarray:
    """Camera coordinates [..., 3] (in front of the camera) → pixel coordinates [..., 2]."""
    u = camera["cx"] + camera["f"] * cam[..., 0] / cam[..., 2]
    v = camera["cy"] - camera["f"] * cam[..., 1] / cam[..., 2]
    # Pillow draws far-off coordinates fine, but huge ones near the clip plane overflow: bound them.
    return np.clip(np.stack([u, v], axis=-1), -1e5, 1e5)


def _blob(draw, kind: int, centre: list[float], radius: float, fill) -> None:
    if radius < 0.5:
        return
    x, y = centre
    if kind == DISC:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)
    elif kind == TRIANGLE:
        draw.polygon([(x, y - radius), (x + radius, y + radius * 0.8), (x - radius, y + radius * 0.8)], fill=fill)
    elif kind == SQUARE:
        draw.rectangle([x - radius * 0.85, y - radius * 0.85, x + radius * 0.85, y + radius * 0.85], fill=fill)
    elif kind == DIAMOND:
        draw.polygon([(x, y - radius), (x + radius, y), (x, y + radius), (x - radius, y)], fill=fill)


def _photo_noise(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, white balance and sensor noise: what makes two photos of one place differ."""
    gain = rng.uniform(0.8, 1.15) * rng.uniform(0.94, 1.06, size=3)
    noisy = pixels.astype(np.float32) * gain.astype(np.float32) + rng.normal(0, 4.0, pixels.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)
