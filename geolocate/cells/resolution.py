"""Which H3 resolution suits an area: the finest one whose well-filled cells still hold most places.

A fixed resolution fits one area: resolution 7 (~5 km²) splits a 20 km peninsula into a handful
of classes but scatters a country's few hundred places into cells of one each. `auto_classes`
looks at the positions themselves; it is the one rule behind `cells.resolution = "auto"`,
`cells.min_samples = "auto"` and their `regions` twins.

It counts *places* (distinct positions), not photos: the views cut from one 360° capture, or
the four views of a location, stand at one place and would otherwise fill a cell four times
over. A class then needs `MIN_PLACES` places' worth of photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geolocate.cells.assign import latlng_to_cells

COARSEST, FINEST = 0, 9
MIN_PLACES = 5  # a well-filled cell holds this many places
MIN_SHARE = 0.7  # ... and such cells hold this share of all places
MIN_CLASSES = 3


@dataclass(frozen=True)
class AutoClasses:
    """What the rule chose, and the figures that say why."""

    resolution: int
    min_samples: int  # photos a class needs: MIN_PLACES × photos per place
    filled_cells: int  # cells of at least MIN_PLACES places at `resolution`
    share: float  # share of the places those cells hold
    places: int
    photos: int

    def sentence(self, unit: str | None = None) -> str:
        """'resolution 2: 61 cells, 74 % of photos in cells of ≥ 5' (places when photos share a position)."""
        unit = unit or ("photos" if self.places == self.photos else "places")
        return (f"resolution {self.resolution}: {self.filled_cells} cells, {round(100 * self.share)} % of {unit} "
                f"in cells of ≥ {MIN_PLACES}")


def filled_share(lat: np.ndarray, lon: np.ndarray, resolution: int, min_samples: int) -> tuple[int, float]:
    """(cells holding at least `min_samples` positions, share of the positions they hold)."""
    _, counts = np.unique(latlng_to_cells(np.asarray(lat), np.asarray(lon), resolution), return_counts=True)
    full = counts[counts >= min_samples]
    return int(len(full)), float(full.sum() / max(len(lat), 1))


def finest_resolution(lat, lon, min_samples: int, min_classes: int = MIN_CLASSES, min_share: float = MIN_SHARE,
                      finest: int = FINEST) -> int:
    """The finest resolution (of `COARSEST`..`finest`) with at least `min_classes` cells of
    `min_samples` positions holding at least `min_share` of all positions; the coarsest one that
    gives `min_classes` such cells when none does both, else `COARSEST`."""
    fallback = None
    for resolution in range(finest, COARSEST - 1, -1):
        classes, share = filled_share(lat, lon, resolution, min_samples)
        if classes >= min_classes and share >= min_share:
            return resolution
        if classes >= min_classes:
            fallback = resolution
    return fallback if fallback is not None else COARSEST


def places(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """The distinct positions among (lat, lon)."""
    unique = np.unique(np.column_stack([np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)]), axis=0)
    return unique[:, 0], unique[:, 1]


def auto_classes(lat, lon, finest: int = FINEST) -> AutoClasses:
    """The resolution and class minimum that fit these positions (see the module docstring).

    Args:
        lat, lon: one position per photo.
        finest: the finest resolution allowed (a small set may not use resolution ≥ 8).
    """
    p_lat, p_lon = places(lat, lon)
    resolution = finest_resolution(p_lat, p_lon, MIN_PLACES, finest=finest)
    filled, share = filled_share(p_lat, p_lon, resolution, MIN_PLACES)
    per_place = max(1, round(len(lat) / max(len(p_lat), 1)))
    return AutoClasses(resolution, MIN_PLACES * per_place, filled, share, len(p_lat), len(lat))
