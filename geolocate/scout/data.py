"""The scout-sniper's training data: locations of each split as cached per-view features.

A location becomes `ViewSet` rows: features [L, 4, D] (zeros for missing views), a presence
mask [L, 4], its region label and its true position. Views are read from the processed photos
(`prepare` wrote them); a view whose photo is missing or unreadable simply counts as missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from geolocate.errors import UserError
from geolocate.schemas import VIEWS

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class ViewSet:
    """Locations of one split, ready for a fusion head."""

    location_ids: list[str]
    features: torch.Tensor  # [L, 4, D] float32
    mask: torch.Tensor  # [L, 4] bool
    labels: torch.Tensor  # [L] long
    latlon: torch.Tensor  # [L, 2] float64

    def __len__(self) -> int:
        return len(self.location_ids)

    def subset(self, index) -> "ViewSet":
        return ViewSet([self.location_ids[i] for i in index.tolist()], self.features[index], self.mask[index],
                       self.labels[index], self.latlon[index])


def location_frame(data) -> pl.DataFrame:
    """locations ⨝ location_split ⨝ regions: one row per labelled location with its split and label."""
    from geolocate.scout.locations import read_locations
    from geolocate.scout.regions import load_regions

    regions = load_regions(data)
    split = pl.read_parquet(data.location_split)
    frame = (read_locations(data).drop("region").join(split, on="location_id", how="inner")
             .join(regions.select("region", "label"), on="region", how="inner").sort("location_id"))
    if frame.filter(pl.col("split") == "train").is_empty() or frame.filter(pl.col("split") == "val").is_empty():
        raise UserError("the location split has no train or no val locations; add data and run `geolocate regions` again")
    return frame


def view_files(frame: pl.DataFrame, data) -> dict[str, Path]:
    """image_id → processed photo of every view in `frame` (raw photo when prepare has not run)."""
    from geolocate.manifest import read_manifest

    ids = pl.concat([frame[v].drop_nulls() for v in VIEWS]).unique()
    manifest = read_manifest(data, required=True).filter(pl.col("image_id").is_in(ids.to_list()))
    files = {}
    for image_id, processed, raw in manifest.select("image_id", "processed_path", "path").iter_rows():
        rel = processed or raw
        if rel:
            files[image_id] = data.root / rel
    return files


def gather_views(frame: pl.DataFrame, rows: dict[str, int], feats: torch.Tensor) -> ViewSet:
    """`ViewSet` of `frame`'s locations from a feature table (`rows`: image_id → row of `feats`)."""
    n, dim = frame.height, feats.shape[1] if feats.ndim == 2 else 0
    index = np.full((n, len(VIEWS)), -1, dtype=np.int64)
    for v, view in enumerate(VIEWS):
        index[:, v] = [rows.get(i, -1) if i is not None else -1 for i in frame[view].to_list()]
    mask = torch.from_numpy(index >= 0)
    features = torch.zeros(n, len(VIEWS), dim)
    if mask.any():
        features[mask] = feats[torch.from_numpy(index[index >= 0])]
    return ViewSet(frame["location_id"].to_list(), features, mask,
                   torch.as_tensor(frame["label"].to_numpy().astype(np.int64)),
                   torch.as_tensor(frame.select("lat", "lon").to_numpy().astype(np.float64)))


def split_views(frame: pl.DataFrame, rows: dict[str, int], feats: torch.Tensor) -> dict[str, ViewSet]:
    """One `ViewSet` per split; locations whose views all failed to load are left out."""
    out = {}
    for name in SPLIT_NAMES:
        views = gather_views(frame.filter(pl.col("split") == name), rows, feats)
        keep = torch.nonzero(views.mask.any(dim=1)).flatten()
        out[name] = views.subset(keep)
    return out
