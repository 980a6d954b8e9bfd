"""Four-view locations as training data: cached per-view features (`ViewSet`) or images (`LocationViews`).

A location becomes `ViewSet` rows: features [L, 4, D] (zeros for missing views), a presence mask
[L, 4], its class and its true position. Views are read from the processed photos (`prepare`
wrote them); a view whose photo is missing or unreadable simply counts as missing. Which locations
and classes a run has is the four-view system's business (`scout.regions.location_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset

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


class LocationViews(Dataset):
    """Locations of one split as image tensors of their four views."""

    def __init__(self, frame: pl.DataFrame, files: dict[str, Path], transform, side: int) -> None:
        self.views = [[files.get(i) if i else None for i in frame[v].to_list()] for v in VIEWS]
        self.labels = frame["label"].to_list()
        self.transform, self.side = transform, side

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        from geolocate.data.images import BadImage, load_rgb

        images, mask = torch.zeros(len(VIEWS), 3, self.side, self.side), torch.zeros(len(VIEWS), dtype=torch.bool)
        for v in range(len(VIEWS)):
            path = self.views[v][i]
            try:
                images[v], mask[v] = self.transform(load_rgb(path, self.side)), True
            except (BadImage, TypeError):  # TypeError: no file for this view
                continue
        return {"views": images, "mask": mask, "label": torch.tensor(self.labels[i], dtype=torch.long)}
