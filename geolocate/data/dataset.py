"""Datasets returning dict samples (`{"image", "label", "lat", "lon", "image_id"}`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import polars as pl
import torch
from torch.utils.data import Dataset

from geolocate.data.images import load_rgb


class PhotoDataset(Dataset):
    """Processed photos of one split with their class and true position."""

    def __init__(self, frame: pl.DataFrame, data_root: Path, transform: Callable, decode_side: int | None = None) -> None:
        self.data_root = Path(data_root)
        self.transform = transform
        self.decode_side = decode_side
        # Plain Python lists: cheap to pickle into DataLoader workers, O(1) indexing.
        self.image_ids = frame["image_id"].to_list()
        self.paths = frame["processed_path"].to_list()
        self.labels = frame["label"].to_list()
        self.lats = frame["lat"].to_list()
        self.lons = frame["lon"].to_list()

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> dict:
        image = load_rgb(self.data_root / self.paths[i], self.decode_side)
        return {
            "image": self.transform(image),
            "label": torch.tensor(self.labels[i], dtype=torch.long),
            "lat": torch.tensor(self.lats[i], dtype=torch.float64),
            "lon": torch.tensor(self.lons[i], dtype=torch.float64),
            "image_id": self.image_ids[i],
        }


class InMemoryDataset(Dataset):
    """Pre-decoded tensors: the benchmark's reference for what the real loader costs."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i]}
