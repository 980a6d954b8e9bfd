"""Synthetic four-view *features* from the synthetic world, for tests and benchmarks.

What an ideal frozen backbone would extract from `geolocate synth`'s four-view photos: the
world's appearance field (`synth.world.AppearanceField`) at the location, seen by each view
through its own fixed random projection (north and south see different facades), plus per-photo
noise, with a few views missing. Tiny twins with random weights extract little from 64 px photos,
so this is how the heads (fusion, ensemble, sniper) are measured on signal the synthetic world
really contains, in seconds and without rendering a photo.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from geolocate.geo import spherical_mean, offset_m
from geolocate.data.views import ViewSet

CITIES = ((48.8566, 2.3522), (45.7640, 4.8357), (48.1173, -1.6778), (47.3220, 5.0415))


def appearance_views(n_locations: int = 800, dim: int = 32, radius_km: float = 6.0, noise: float = 0.5,
                     drop: float = 0.1, seed: int = 0, world_seed: int = 0) -> tuple[dict[str, ViewSet], np.ndarray]:
    """({train, val, test: ViewSet}, region centroids [C, 2] from train) over the `CITIES` regions.

    Args:
        n_locations: locations in all (split 70/15/15 at random).
        dim: width of each view's features.
        radius_km: locations lie uniformly in a disc of this radius around each city centre.
        noise: std of the per-view noise (the field's values have unit variance).
        drop: share of views missing (never all four of a location).
        seed: seed of positions, projections, noise and split.
        world_seed: seed of the appearance field (the synthetic world).
    """
    from geolocate.synth.world import AppearanceField

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CITIES), n_locations)
    lat, lon = _positions(rng, labels, radius_km)
    field = AppearanceField(world_seed).raw(lat, lon).T  # [L, P]
    project = rng.normal(0, 1 / math.sqrt(field.shape[1]), (4, field.shape[1], dim))
    features = np.einsum("lp,vpd->lvd", field, project) + rng.normal(0, noise, (n_locations, 4, dim))
    mask = rng.uniform(size=(n_locations, 4)) >= drop
    mask[~mask.any(axis=1), 0] = True
    features[~mask] = 0.0
    parts = np.split(rng.permutation(n_locations), [int(0.7 * n_locations), int(0.85 * n_locations)])
    sets = {name: ViewSet([str(i) for i in idx], torch.as_tensor(features[idx], dtype=torch.float32),
                          torch.as_tensor(mask[idx]), torch.as_tensor(labels[idx]),
                          torch.as_tensor(np.stack([lat[idx], lon[idx]], axis=1)))
            for name, idx in zip(("train", "val", "test"), parts)}
    train = parts[0]
    centroids = np.array([spherical_mean(lat[train][labels[train] == c], lon[train][labels[train] == c]) for c in range(len(CITIES))])
    return sets, centroids


def _positions(rng: np.random.Generator, labels: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    r = 1000 * radius_km * np.sqrt(rng.uniform(size=len(labels)))
    bearing = rng.uniform(0, 2 * np.pi, len(labels))
    lat, lon = np.empty(len(labels)), np.empty(len(labels))
    for i, c in enumerate(labels):
        a, b = offset_m(CITIES[c][0], CITIES[c][1], r[i] * np.cos(bearing[i]), r[i] * np.sin(bearing[i]))
        lat[i], lon[i] = float(a), float(b)
    return lat, lon
