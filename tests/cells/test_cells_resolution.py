"""Which H3 resolution suits an area: fine for a town's clusters, coarse for places spread over a country."""

from __future__ import annotations

import numpy as np

from geolocate.cells.resolution import COARSEST, filled_share, finest_resolution
from geolocate.geo import offset_m

CENTRES = ((44.70, -1.20), (45.50, 0.10), (46.30, 1.40))  # ~100 km apart


def _clusters(radius_m: float, per: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    lat, lon = [], []
    for c_lat, c_lon in CENTRES:
        a, b = offset_m(c_lat, c_lon, rng.uniform(-radius_m, radius_m, per), rng.uniform(-radius_m, radius_m, per))
        lat.append(a)
        lon.append(b)
    return np.concatenate(lat), np.concatenate(lon)


def test_tight_clusters_get_finer_classes_than_loose_ones():
    tight, loose = finest_resolution(*_clusters(150), min_samples=5), finest_resolution(*_clusters(15_000), min_samples=5)
    assert tight > loose
    for lat_lon, res in ((_clusters(150), tight), (_clusters(15_000), loose)):
        classes, share = filled_share(*lat_lon, res, 5)
        assert classes >= 3 and share >= 0.7
        if res < 9:  # one step finer no longer keeps most places in well-filled cells
            finer = filled_share(*lat_lon, res + 1, 5)
            assert finer[0] < 3 or finer[1] < 0.7


def test_places_too_scattered_for_any_resolution_get_the_coarsest():
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-60, 70, 12), rng.uniform(-180, 180, 12)
    assert finest_resolution(lat, lon, min_samples=5) == COARSEST
