"""What a fetch remembers between runs, per area: its boxes and the images they held.

- `data/fetch_state/<area>.json`: tiles done, tiles failed (with the reason), boxes still
  truncated at the deepest split. A re-run skips done tiles and retries failed ones.
- `data/fetch_state/<area>.candidates.parquet`: every image found so far (metadata, no URL:
  thumbnail URLs expire, so a photo downloaded in a later run gets a fresh one by lookup).
  Sampling draws from this whole pool, so a re-run samples the same photos without re-querying.
The candidates are written before the state that marks their tiles done: a kill in between
only means a tile is searched again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

from geolocate import atomic
from geolocate.acquire.catalog import Area
from geolocate.paths import DataPaths
from geolocate.schemas import conform

CANDIDATES = {
    "image_id": pl.Utf8,
    "sequence_id": pl.Utf8,
    "creator_id": pl.Utf8,
    "creator_username": pl.Utf8,
    "captured_at_ms": pl.Int64,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "compass_angle": pl.Float64,
    "is_pano": pl.Boolean,
    "camera_type": pl.Utf8,
    "license": pl.Utf8,
}


@dataclass
class AreaState:
    """Boxes done, failed and truncated for one area."""

    area: str
    bbox: list[float]
    source: str = "mapillary"
    done: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "area": self.area, "bbox": self.bbox, "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "done": sorted(self.done), "failed": dict(sorted(self.failed.items())), "truncated": sorted(self.truncated),
        }


def load_state(data: DataPaths, area: Area, source: str = "mapillary") -> AreaState:
    """The area's saved state for `source`; a fresh one when none exists, or when the area's box changed."""
    path = data.area_state(area.name, source)
    fresh = AreaState(area.name, list(area.bbox), source)
    if not path.exists():
        return fresh
    import json

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return fresh  # unreadable state only costs a re-search, never data
    if [round(v, 7) for v in raw.get("bbox", [])] != [round(v, 7) for v in area.bbox]:
        return fresh
    return AreaState(area.name, list(area.bbox), source, set(raw.get("done", [])), dict(raw.get("failed", {})), set(raw.get("truncated", [])))


def save_state(data: DataPaths, state: AreaState) -> None:
    atomic.write_json(data.area_state(state.area, state.source), state.to_json())


def load_candidates(data: DataPaths, area: Area, source: str = "mapillary") -> pl.DataFrame:
    """The images `source` found in `area` in earlier runs (empty when none), inside the area's current box."""
    path = data.area_candidates(area.name, source)
    if not path.exists():
        return pl.DataFrame(schema=CANDIDATES)
    try:
        pool = conform(pl.read_parquet(path), CANDIDATES)  # a pool from before `license` gets it null
    except (pl.exceptions.PolarsError, OSError):
        return pl.DataFrame(schema=CANDIDATES)  # rebuilt by searching again
    min_lon, min_lat, max_lon, max_lat = area.bbox
    return pool.filter(pl.col("lon").is_between(min_lon, max_lon) & pl.col("lat").is_between(min_lat, max_lat))


def merge_candidates(pool: pl.DataFrame, records: list[dict[str, Any]]) -> pl.DataFrame:
    """`pool` plus `records` (search rows), one row per image_id, the newest record winning."""
    if not records:
        return pool
    new = pl.DataFrame([{k: r.get(k) for k in CANDIDATES} for r in records], schema=CANDIDATES)
    return pl.concat([pool, new]).unique("image_id", keep="last", maintain_order=True).sort("image_id")


def save_candidates(data: DataPaths, area: Area, pool: pl.DataFrame, source: str = "mapillary") -> None:
    atomic.write_parquet(data.area_candidates(area.name, source), pool)
