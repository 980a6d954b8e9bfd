"""A street as 3-D primitives, built from a location's look (`world.PARAMS`) and a seeded rng.

World coordinates are metres: x to the right of the driving direction, y up, z along the street.
The street runs from -`far` to +`far` (two-sided, for four-view locations) or from just behind
the camera to +`far`. Everything a location shows — how tall and wide its buildings are, their
colours, windows, roofs, shops, trees, signs, road markings — comes from the look, with
per-building jitter so a street is not one repeated tile. `scene.py` projects and draws them.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

QUAD, DISC, TRIANGLE, SQUARE, DIAMOND = 0, 1, 2, 3, 4
GROUND, BACKDROP, BUILDINGS, OBJECTS = 0, 1, 2, 3


def hsv(h, s, v) -> np.ndarray:
    """RGB in 0-255 floats from HSV in [0, 1] (hue wraps, the rest is clipped); broadcasts: [..., 3]."""
    if np.ndim(h) == np.ndim(s) == np.ndim(v) == 0:  # the common scalar case, ten times faster
        rgb = colorsys.hsv_to_rgb(float(h) % 1.0, min(max(float(s), 0.0), 1.0), min(max(float(v), 0.0), 1.0))
        return np.array(rgb) * 255.0
    h, s, v = np.broadcast_arrays(np.mod(h, 1.0), np.clip(s, 0.0, 1.0), np.clip(v, 0.0, 1.0))
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    sector = sector.astype(int) % 6
    rgb = [np.choose(sector, order) for order in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))]
    return np.stack(rgb, axis=-1) * 255.0


@dataclass
class Primitives:
    """What to draw, in batches: quads (4 vertices) or screen-facing blobs (vertex 0 and a radius).

    `arrays()` flattens the batches; keeping them as batches lets a window grid be one numpy
    expression instead of hundreds of small arrays.
    """

    verts: list = field(default_factory=list)  # each (k, 4, 3)
    meta: list = field(default_factory=list)  # each (k, 8): r, g, b, kind, radius, layer, group, facing
    n_groups: int = 0
    _flat: tuple | None = None

    def new_group(self) -> int:
        self.n_groups += 1
        return self.n_groups - 1

    def new_groups(self, count: int) -> np.ndarray:
        self.n_groups += count
        return np.arange(self.n_groups - count, self.n_groups)

    def quads(self, pts, colour, layer: int, group, facing: int = 0) -> None:
        """Add quads `pts` [k, 4, 3] (or one [4, 3]); `colour` [3] or [k, 3], `group` one or [k];
        `facing` is the facade normal (±x) for sun shading, 0 for unshaded things."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 4, 3)
        self._add(pts, colour, QUAD, 0.0, layer, group, facing)

    def blob(self, centre, radius: float, kind: int, colour, layer: int, group: int) -> None:
        pts = np.repeat(np.asarray(centre, dtype=np.float64)[None, None], 4, axis=1)
        self._add(pts, colour, kind, radius, layer, group, 0)

    def _add(self, pts, colour, kind, radius, layer, group, facing) -> None:
        meta = np.empty((len(pts), 8))
        meta[:, :3] = colour
        meta[:, 3], meta[:, 4], meta[:, 5], meta[:, 6], meta[:, 7] = kind, radius, layer, group, facing
        self.verts.append(pts)
        self.meta.append(meta)
        self._flat = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All vertices [n, 4, 3] and metadata [n, 8] (columns as in `meta`); computed once per street."""
        if self._flat is None:
            self._flat = (np.concatenate(self.verts), np.concatenate(self.meta))
        return self._flat


def _col(value) -> np.ndarray:
    """A scalar or [k] array as a [k or 1, 1] column (broadcasts over a quad's 4 vertices)."""
    return np.asarray(value, dtype=np.float64).reshape(-1, 1)


def _rects(count: int, fixed_axis: int, fixed, a1, a2, b1, b2) -> np.ndarray:
    """[k, 4, 3] rectangles with coordinate `fixed_axis` constant, spanning [a1, a2] x [b1, b2] in the others."""
    a_axis, b_axis = {0: (2, 1), 1: (0, 2), 2: (0, 1)}[fixed_axis]
    out = np.empty((count, 4, 3))
    out[:, :, fixed_axis] = _col(fixed)
    out[:, [0, 3], a_axis], out[:, [1, 2], a_axis] = _col(a1), _col(a2)
    out[:, [0, 1], b_axis], out[:, [2, 3], b_axis] = _col(b1), _col(b2)
    return out


def _wall(x, z1, z2, y1, y2) -> np.ndarray:
    """Vertical rectangles in planes x = const: [k, 4, 3] (array arguments of length k broadcast)."""
    return _rects(max(np.size(v) for v in (x, z1, z2, y1, y2)), 0, x, z1, z2, y1, y2)


def _flat(x1, x2, z1, z2) -> np.ndarray:
    """Rectangles on the ground: [k, 4, 3]."""
    return _rects(max(np.size(v) for v in (x1, x2, z1, z2)), 1, 0.0, x1, x2, z1, z2)


def build_street(look: dict[str, float], rng: np.random.Generator, far: float, two_sided: bool) -> Primitives:
    """The primitives of a street `far` metres long ahead (and behind, when `two_sided`)."""
    prims = Primitives()
    road = 3.0 + 5.0 * look["street_width"]
    facade_x = road + 2.0 + 1.5 * look["sidewalk_tone"]
    z0 = -far if two_sided else -6.0
    _ground(prims, look, road, facade_x, z0, far)
    _street_ends(prims, look, facade_x, (far, z0) if two_sided else (far,))
    for side in (-1, 1):
        _buildings(prims, look, rng, side * facade_x, side, z0, far)
        _street_objects(prims, look, rng, side, road, z0, far)
    _cars(prims, rng, road, z0, far)
    return prims


def _ground(prims: Primitives, look, road: float, facade_x: float, z0: float, far: float) -> None:
    """Pavement, asphalt (tone and warmth from the look) and the road markings."""
    g = prims.new_group()
    walk = hsv(0.08 + 0.5 * look["road_warm"], 0.12, 0.45 + 0.4 * look["sidewalk_tone"])
    asphalt = hsv(0.05 + 0.55 * look["road_warm"], 0.05 + 0.15 * look["road_warm"], 0.18 + 0.4 * look["road_tone"])
    prims.quads(_flat(-facade_x, facade_x, z0, far), walk, GROUND, g)
    prims.quads(_flat(-road, road, z0, far), asphalt, GROUND, g)
    # Markings: white dashes, a solid yellow line, or a white double line, by the look.
    style = int(3 * min(look["marking"], 0.999))
    paint = hsv(0.14, 0.85, 0.95) if style == 1 else hsv(0, 0, 0.95)
    starts = np.arange(z0, far, 7.0) if style == 0 else np.array([z0])
    ends = starts + 3.0 if style == 0 else np.array([far])
    for x in ((-0.12,) if style < 2 else (-0.35, 0.25)):
        prims.quads(_flat(x, x + 0.15, starts, ends), paint, GROUND, g)


def _street_ends(prims: Primitives, look, facade_x: float, ends: tuple[float, ...]) -> None:
    """A row of houses across the street's far end(s), closing the view (the haze fades it)."""
    wall = hsv(look["facade_hue"], 0.5 * look["facade_sat"], 0.5 + 0.4 * look["facade_light"])
    height = 3.0 * (1 + 6 * look["floors"])
    for end in ends:
        prims.quads(_rects(1, 2, end, -facade_x, facade_x, 0.0, height), wall, BACKDROP, prims.new_group())


def _buildings(prims: Primitives, look, rng: np.random.Generator, x: float, side: int, z0: float, far: float) -> None:
    """Buildings shoulder to shoulder along one side of the street, each part one numpy batch."""
    mean_width = 6.0 + 18.0 * look["building_width"]
    widths = mean_width * rng.uniform(0.7, 1.3, int((far - z0) / (0.7 * mean_width)) + 2)
    edges = z0 + float(rng.uniform(0, 4)) + np.concatenate([[0.0], np.cumsum(widths)])
    z1 = edges[:-1][edges[:-1] < far]
    z2 = np.minimum(edges[1 : len(z1) + 1], far)
    k = len(z1)
    floors = np.clip(np.round(1 + 6 * look["floors"] + rng.normal(0, 0.8, k)), 1, 9).astype(int)
    height = 3.1 * floors + 0.6
    groups, facing = prims.new_groups(k), -side  # the facades face the street
    walls = hsv(look["facade_hue"] + rng.normal(0, 0.03, k), 0.08 + 0.55 * look["facade_sat"] + rng.normal(0, 0.06, k),
                0.45 + 0.5 * look["facade_light"] + rng.normal(0, 0.06, k))
    prims.quads(_wall(x, z1, z2, 0.0, height), walls, BUILDINGS, groups, facing)
    _roofs(prims, look, x, side, z1, z2, height, groups)
    shop = rng.uniform(size=k) < look["awning"]
    if shop.any():
        prims.quads(_wall(x - side * 0.05, z1[shop] + 0.3, z2[shop] - 0.3, 2.3, 3.0), hsv(look["awning_hue"], 0.7, 0.75),
                    BUILDINGS, groups[shop], facing)
        prims.quads(_wall(x - side * 0.04, z1[shop] + 0.6, z2[shop] - 0.6, 0.2, 2.2), hsv(0.6, 0.25, 0.25),
                    BUILDINGS, groups[shop], facing)
    _windows(prims, look, x - side * 0.03, z1, z2, floors, groups, facing, first_floor=np.where(shop, 1, 0))


def _roofs(prims: Primitives, look, x: float, side: int, z1, z2, height, groups) -> None:
    """Flat with a cornice, pitched tiles, or a tall dark mansard, by the look's roof value."""
    style = int(3 * min(look["roof"], 0.999))
    tile = hsv(0.03 + 0.55 * look["roof_hue"], 0.65 - 0.5 * look["roof_hue"], 0.55 - 0.15 * look["roof_hue"])
    if style == 0:
        prims.quads(_wall(x - side * 0.2, z1, z2, height - 0.5, height), tile * 0.7, BUILDINGS, groups)
        return
    rise, depth = (2.5, 4.0) if style == 1 else (3.5, 1.2)
    roof = np.empty((len(z1), 4, 3))
    roof[:, :2, 0], roof[:, 2:, 0] = x, x + side * depth
    roof[:, :2, 1], roof[:, 2:, 1] = height[:, None], (height + rise)[:, None]
    roof[:, [0, 3], 2], roof[:, [1, 2], 2] = z1[:, None], z2[:, None]
    prims.quads(roof, tile if style == 1 else tile * 0.55, BUILDINGS, groups)


def _windows(prims: Primitives, look, x: float, z1, z2, floors, groups, facing: int, first_floor) -> None:
    """A grid of windows (spacing, shape, tint from the look) per building; shutters when the look says so."""
    spacing = 1.6 + 3.0 * (1.0 - look["window_cols"])
    w = spacing * (0.3 + 0.3 * look["window_shape"])
    h = 0.8 + 1.4 * look["window_shape"]
    parts = []
    for b in range(len(z1)):
        n_cols = int((z2[b] - z1[b] - 0.6) // spacing)
        if n_cols < 1 or first_floor[b] >= floors[b]:
            continue
        start = z1[b] + (z2[b] - z1[b] - n_cols * spacing) / 2 + (spacing - w) / 2
        zc, y = np.meshgrid(start + spacing * np.arange(n_cols), 3.1 * np.arange(first_floor[b], floors[b]) + 1.0)
        parts.append((zc.ravel(), y.ravel(), np.full(zc.size, groups[b])))
    if not parts:
        return
    zc, y, group = (np.concatenate(column) for column in zip(*parts))
    glass = hsv(0.55 + 0.1 * look["window_tint"], 0.3, 0.15 + 0.6 * look["window_tint"])
    prims.quads(_wall(x, zc, zc + w, y, y + h), glass, BUILDINGS, group, facing)
    if look["shutters"] > 0.55:
        for zs in (zc - 0.35 * w, zc + w):
            prims.quads(_wall(x, zs, zs + 0.35 * w, y, y + h), hsv(look["facade_hue"] + 0.45, 0.6, 0.5), BUILDINGS, group, facing)


def _street_objects(prims: Primitives, look, rng, side: int, road: float, z0: float, far: float) -> None:
    """Trees (by greenery), lamp posts and signs (shape and colour from the look) on one kerb."""
    tree_step = 7.0 + 25.0 * (1.0 - look["greenery"])
    for z in np.arange(z0 + rng.uniform(0, tree_step), far, tree_step):
        if rng.uniform() < 0.3 + 0.7 * look["greenery"]:
            g, x = prims.new_group(), side * (road + 0.9)
            prims.quads(_wall(x, z - 0.15, z + 0.15, 0, 3.0), hsv(0.08, 0.5, 0.3), OBJECTS, g)
            crown = hsv(0.17 + 0.22 * look["tree_hue"] + rng.normal(0, 0.02), 0.55 + 0.3 * look["tree_hue"], 0.35 + 0.25 * look["greenery"])
            prims.blob([x, 4.2, z], 1.6 + 1.2 * look["greenery"] * rng.uniform(0.7, 1.2), DISC, crown, OBJECTS, g)
    shape = (DISC, TRIANGLE, SQUARE, DIAMOND)[int(4 * min(look["sign_shape"], 0.999))]
    for z in rng.uniform(z0, far, size=int(rng.integers(1, 4))):
        g, x = prims.new_group(), side * (road + 0.4)
        prims.quads(_wall(x, z - 0.05, z + 0.05, 0, 2.6), hsv(0, 0, 0.5), OBJECTS, g)
        prims.blob([x, 2.6, z], 0.45, shape, hsv(look["sign_hue"], 0.85, 0.9), OBJECTS, g)
    for z in np.arange(z0 + 12.5 * (side > 0), far, 25.0):
        g, x = prims.new_group(), side * (road + 0.3)
        prims.quads(_wall(x, z - 0.07, z + 0.07, 0, 5.5), hsv(0, 0, 0.22), OBJECTS, g)


def _cars(prims: Primitives, rng, road: float, z0: float, far: float) -> None:
    """Parked and passing cars: clutter in random colours, unrelated to the place."""
    for _ in range(int(rng.integers(0, 5))):
        g = prims.new_group()
        x, z = float(rng.choice([-1, 1])) * road * 0.55, float(rng.uniform(max(z0, -far), far))
        paint = hsv(float(rng.uniform()), float(rng.uniform(0, 0.8)), float(rng.uniform(0.2, 0.95)))
        body = [[x - 0.9, 0.3, z], [x + 0.9, 0.3, z], [x + 0.9, 1.2, z], [x - 0.9, 1.2, z]]
        cabin = [[x - 0.7, 1.2, z + 0.4], [x + 0.7, 1.2, z + 0.4], [x + 0.6, 1.6, z + 0.8], [x - 0.6, 1.6, z + 0.8]]
        prims.quads(body, paint, OBJECTS, g)
        prims.quads(cabin, hsv(0.6, 0.2, 0.2), OBJECTS, g)
