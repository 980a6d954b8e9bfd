"""Boxes: cut an area into search boxes the API accepts, split a truncated box, name a box.

A box is `(min_lon, min_lat, max_lon, max_lat)` in degrees, the order Mapillary's `bbox` takes.
Coordinates are rounded to 7 decimals (about 1 cm) so a box's key is stable across runs.
"""

from __future__ import annotations

import math

Box = tuple[float, float, float, float]
_DECIMALS = 7


def tile_bbox(bbox: Box, tile_deg: float) -> list[Box]:
    """Equal tiles covering `bbox`, none wider or taller than `tile_deg`, row by row from the south-west.

    Args:
        bbox: the area to cover.
        tile_deg: the largest side allowed, in degrees.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    # Equal tiles rather than tile_deg tiles plus a sliver: no box is needlessly tiny.
    n_lon = max(1, math.ceil((max_lon - min_lon) / tile_deg - 1e-9))
    n_lat = max(1, math.ceil((max_lat - min_lat) / tile_deg - 1e-9))
    step_lon = (max_lon - min_lon) / n_lon
    step_lat = (max_lat - min_lat) / n_lat
    return [
        _round((min_lon + i * step_lon, min_lat + j * step_lat, min_lon + (i + 1) * step_lon, min_lat + (j + 1) * step_lat))
        for j in range(n_lat)
        for i in range(n_lon)
    ]


def split_box(box: Box) -> list[Box]:
    """The four quadrants of `box` (SW, SE, NW, NE)."""
    min_lon, min_lat, max_lon, max_lat = box
    mid_lon, mid_lat = (min_lon + max_lon) / 2, (min_lat + max_lat) / 2
    return [
        _round((min_lon, min_lat, mid_lon, mid_lat)),
        _round((mid_lon, min_lat, max_lon, mid_lat)),
        _round((min_lon, mid_lat, mid_lon, max_lat)),
        _round((mid_lon, mid_lat, max_lon, max_lat)),
    ]


def box_key(box: Box) -> str:
    """The box as the API's `bbox` parameter: 'minlon,minlat,maxlon,maxlat' (also its key in fetch state)."""
    return ",".join(f"{v:.{_DECIMALS}f}".rstrip("0").rstrip(".") for v in box)


def contains(box: Box, lon: float, lat: float) -> bool:
    """True when the point lies in `box` (edges included)."""
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def spatial_bin(lon: float, lat: float, bin_deg: float) -> tuple[int, int]:
    """The grid cell of side `bin_deg` holding the point (used to spread a sample over an area)."""
    return math.floor(lon / bin_deg), math.floor(lat / bin_deg)


def _round(box: tuple[float, float, float, float]) -> Box:
    return tuple(round(v, _DECIMALS) for v in box)  # type: ignore[return-value]
