"""Which photos an area's fetch downloads: new ones for the sample, and lost ones to restore.

A manifest row of the area whose raw file is gone is downloaded again by id when its processed
copy is gone too (the photo is lost otherwise). When the processed copy exists the raw file was
most likely freed on purpose by `geolocate clean-raw`, so it is left alone unless `restore_raw`
asks to rebuild `data/raw` anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from geolocate.acquire.catalog import Area
from geolocate.manifest import read_manifest
from geolocate.acquire.sampling import spread_order
from geolocate.config import FetchConfig
from geolocate.paths import DataPaths, id_from_stem, is_valid_image_id


@dataclass
class DownloadPlan:
    """What `_download_area` does for one area."""

    chosen: list[str] = field(default_factory=list)  # new photos to download
    orphans: list[str] = field(default_factory=list)  # files on disk missing from the manifest
    have: set[str] = field(default_factory=set)  # photos the area already has (restored ones included)
    restore: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → its manifest row, raw file to download again


def plan_downloads(data: DataPaths, area: Area, pool: pl.DataFrame, max_per_city: int, cfg: FetchConfig, restore_raw: bool = False,
                   source: str = "mapillary", tile_deg: float | None = None) -> DownloadPlan:
    """The area's plan for `source`; it keeps at most `max_per_city` photos, those it has counting first.

    Ids already in the manifest under another area are left alone; another source's photos of
    the same area do not count towards this one's `max_per_city`.
    """
    manifest = read_manifest(data)
    known = set(manifest["image_id"].to_list())
    raw = raw_ids(data)
    on_disk = raw & set(pool["image_id"].to_list())
    mine = manifest.filter((pl.col("city") == area.name) & (pl.col("source") == source) & pl.col("parent_id").is_null())
    have = set(mine["image_id"].to_list()) | (on_disk - known)
    need = max(0, max_per_city - len(have))
    order = spread_order(pool, tile_deg or cfg.tile_deg, cfg.seed)
    chosen = [i for i in order if i not in have and i not in known][:need]
    restore = {row["image_id"]: row for row in _lost_rows(mine, raw, data, restore_raw)}  # `mine`: this source's
    return DownloadPlan(chosen, sorted(on_disk - known), have, restore)


def _lost_rows(rows: pl.DataFrame, raw: set[str], data: DataPaths, restore_raw: bool) -> list[dict[str, Any]]:
    """Rows whose raw file is missing and which should be downloaded again."""
    fetched = rows.filter(~pl.col("image_id").is_in(list(raw)))
    return [row for row in fetched.iter_rows(named=True)
            if is_valid_image_id(row["image_id"]) and (restore_raw or not data.processed_photo(row["image_id"]).is_file())]


def raw_ids(data: DataPaths) -> set[str]:
    """Ids of the photos in `data/raw` (one directory listing instead of a stat per candidate)."""
    if not data.raw.is_dir():
        return set()
    names = (e.name[:-4] for e in os.scandir(data.raw) if e.name.endswith(".jpg") and not e.name.startswith("."))
    return {i for i in map(id_from_stem, names) if i is not None}
