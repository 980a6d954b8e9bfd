"""Which H3 resolution suits an area: the finest one whose well-filled cells still hold most places.

A fixed resolution fits one area: resolution 7 (~5 km²) splits a 20 km peninsula into a handful
of classes but scatters a country's few hundred places into cells of one each, all of which the
sparse-cell policy then drops. `finest_resolution` looks at the positions themselves.
"""

from __future__ import annotations

import numpy as np

from geolocate.cells.assign import latlng_to_cells

COARSEST, FINEST = 2, 9


def filled_share(lat: np.ndarray, lon: np.ndarray, resolution: int, min_samples: int) -> tuple[int, float]:
    """(cells holding at least `min_samples` positions, share of the positions they hold)."""
    _, counts = np.unique(latlng_to_cells(np.asarray(lat), np.asarray(lon), resolution), return_counts=True)
    full = counts[counts >= min_samples]
    return int(len(full)), float(full.sum() / max(len(lat), 1))


def finest_resolution(lat, lon, min_samples: int, min_classes: int = 3, min_share: float = 0.7) -> int:
    """The finest resolution (of `COARSEST`..`FINEST`) with at least `min_classes` cells of
    `min_samples` positions holding at least `min_share` of all positions; the coarsest one that
    gives `min_classes` such cells when none does both, else `COARSEST`."""
    fallback = None
    for resolution in range(FINEST, COARSEST - 1, -1):
        classes, share = filled_share(lat, lon, resolution, min_samples)
        if classes >= min_classes and share >= min_share:
            return resolution
        if classes >= min_classes:
            fallback = resolution
    return fallback if fallback is not None else COARSEST
