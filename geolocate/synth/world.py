"""The synthetic world's look: a smooth, seeded appearance field over (lat, lon).

Every scene parameter (sky and facade hues, building height, window grid, roof style, greenery,
road colour, sign shape…) is a value in [0, 1] read from a field that varies over kilometres:
a sum of seeded sinusoids (random Fourier features) of the position in km. Nearby places look
alike, places one H3 res-6 cell apart (≈ 4-7 km) look different, and a model can learn *where*
a photo was taken from its pixels alone. A weaker regional component (hundreds of km) gives
each region a style of its own, but most of the variation is local: there is no per-city code.
"""

from __future__ import annotations

import numpy as np

# The parameters a scene reads. Their meaning lives in `scene.py`; the order only fixes seeding.
PARAMS: tuple[str, ...] = (
    "sky_hue", "sky_light", "clouds",
    "facade_hue", "facade_sat", "facade_light", "floors", "building_width",
    "window_cols", "window_shape", "window_tint", "shutters",
    "roof", "roof_hue", "awning", "awning_hue",
    "greenery", "tree_hue", "road_tone", "road_warm", "marking",
    "sign_shape", "sign_hue", "sidewalk_tone", "street_width",
)

KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_EQUATOR = 111.320


def to_km(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Local east/north kilometres; the cos(lat) scale keeps the field isotropic at every latitude."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    return lon * KM_PER_DEG_LON_EQUATOR * np.cos(np.radians(lat)), lat * KM_PER_DEG_LAT


class _Waves:
    """A seeded sum of `waves` cosines per parameter, wavelengths log-uniform in [min_km, max_km]."""

    def __init__(self, rng: np.random.Generator, waves: int, min_km: float, max_km: float) -> None:
        shape = (len(PARAMS), waves)
        wavelength = np.exp(rng.uniform(np.log(min_km), np.log(max_km), shape))
        angle = rng.uniform(0, 2 * np.pi, shape)
        self.kx = 2 * np.pi / wavelength * np.cos(angle)
        self.ky = 2 * np.pi / wavelength * np.sin(angle)
        self.phase = rng.uniform(0, 2 * np.pi, shape)
        amplitude = rng.uniform(0.5, 1.0, shape)
        # A sum of cosines with random phases has variance sum(a²)/2: normalise it to one.
        self.amp = amplitude / np.sqrt((amplitude**2).sum(axis=1, keepdims=True) / 2)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        arg = self.kx[..., None] * x + self.ky[..., None] * y + self.phase[..., None]
        return (self.amp[..., None] * np.cos(arg)).sum(axis=1)


class AppearanceField:
    """A seeded smooth field: `field(lat, lon)` → {parameter: array in [0, 1]}.

    Two scales add up: local waves (6-24 km: a ~3-10 km H3 cell differs from its neighbours
    while a street, tens of metres, stays uniform) and weaker regional waves (150-600 km: a
    region's style, like slate roofs in the west and tiles in the south, so cities differ too).

    Args:
        seed: the data-set seed; the same seed gives the same world.
        regional: weight of the regional waves relative to the local ones.
    """

    def __init__(self, seed: int, regional: float = 0.75) -> None:
        rng = np.random.default_rng([seed, 0xF1E1D])
        self._local = _Waves(rng, 6, 6.0, 24.0)
        self._regional = _Waves(rng, 3, 150.0, 600.0)
        self._regional_weight = regional

    def raw(self, lat, lon) -> np.ndarray:
        """Unit-variance field values, shape [len(PARAMS), n]."""
        x, y = to_km(np.atleast_1d(lat), np.atleast_1d(lon))
        mixed = self._local(x, y) + self._regional_weight * self._regional(x, y)
        return mixed / np.sqrt(1.0 + self._regional_weight**2)

    def __call__(self, lat, lon) -> dict[str, np.ndarray]:
        """Each parameter in [0, 1]; tanh spreads the roughly Gaussian sum over the whole range."""
        values = 0.5 + 0.5 * np.tanh(1.1 * self.raw(lat, lon))
        return {name: values[i] for i, name in enumerate(PARAMS)}


def looks_at(field: AppearanceField, lat, lon) -> list[dict[str, float]]:
    """One plain-float parameter dict per position (what a render worker receives)."""
    values = field(lat, lon)
    n = len(np.atleast_1d(lat))
    return [{name: float(values[name][i]) for name in PARAMS} for i in range(n)]
