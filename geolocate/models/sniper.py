"""The snipers: what moves a location from the scouts' answer to a finer position.

`SniperRegressor` is a residual MLP. Input: the fused location features, the top-1 region
(embedded) and its confidence. Output: a (Δlat, Δlon) offset in degrees from the scouts' position.
The last layer starts at zero, so an untrained sniper predicts that position itself and training
can only start from the scouts' answer. `NeighbourSniper` is its small-data counterpart: the
similarity-weighted mean position of the closest training locations in the same features.
`SniperRegressor` answers `place(features, region, confidence, start)`, the index snipers
(`NeighbourSniper` here, `evaluate.retrieval_sniper.RetrievalSniper`) `place_inputs(inputs)`:
positions [B, 2].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from geolocate.models.held_out import TrainRowsIndex, checked_train_size


@dataclass
class SniperInputs:
    """What a sniper sees for each location, and the truth it is scored against."""

    features: torch.Tensor  # [L, F] fused features (both scouts, concatenated)
    region: torch.Tensor  # [L] region whose centroid the offset starts from
    confidence: torch.Tensor  # [L] probability of that region
    centroid: torch.Tensor  # [L, 2] where the offset starts (lat, lon), float64
    truth: torch.Tensor  # [L, 2] true position, float64
    probs: torch.Tensor | None = None  # [L, C] the ensemble's region probabilities (what retrieval weighs)
    labels: torch.Tensor | None = None  # [L] true regions (what a retrieval index over these locations holds)

    def __len__(self) -> int:
        return len(self.region)

    def take(self, index: torch.Tensor) -> "SniperInputs":
        parts = (self.features, self.region, self.confidence, self.centroid, self.truth, self.probs, self.labels)
        return SniperInputs(*(None if t is None else t[index] for t in parts))


def sniper_positions(sniper: nn.Module, inputs: SniperInputs) -> torch.Tensor:
    """Predicted positions [L, 2] (float64) from a sniper (a residual MLP, the neighbour average or retrieval)."""
    place_inputs = getattr(sniper, "place_inputs", None)
    if place_inputs is not None:
        return place_inputs(inputs)
    return sniper.place(inputs.features, inputs.region, inputs.confidence, inputs.centroid)


class ResidualBlock(nn.Module):
    """x + MLP(LayerNorm(x)): pre-norm, GELU, dropout."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SniperRegressor(nn.Module):
    """Fused features [B, D] + region [B] + confidence [B] → offset [B, 2] in degrees (Δlat, Δlon).

    Args:
        in_dim: width of the fused features.
        num_regions: number of region classes (the embedding table size).
        region_dim: width of the region embedding.
        hidden: width of the residual trunk.
        blocks: number of residual blocks.
        dropout: dropout inside the blocks.
        offset_scale_deg: the network works in units of this many degrees; set it to the typical
            spread of positions around region centroids (e.g. their std in the training set) so
            raw outputs stay near unit scale whatever the region size.
    """

    def __init__(self, in_dim: int, num_regions: int, region_dim: int = 32, hidden: int = 256, blocks: int = 2,
                 dropout: float = 0.1, offset_scale_deg: float = 1.0) -> None:
        super().__init__()
        self.model_kwargs = {"in_dim": in_dim, "num_regions": num_regions, "region_dim": region_dim, "hidden": hidden,
                             "blocks": blocks, "dropout": dropout, "offset_scale_deg": offset_scale_deg}
        self.region_embed = nn.Embedding(num_regions, region_dim)
        self.stem = nn.Linear(in_dim + region_dim + 1, hidden)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden, dropout) for _ in range(blocks)])
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("offset_scale", torch.tensor(float(offset_scale_deg)))

    def forward(self, features: torch.Tensor, region: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, self.region_embed(region.long()), confidence.reshape(-1, 1).to(features.dtype)], dim=1)
        x = self.blocks(self.stem(x))
        return self.out(self.norm(x)) * self.offset_scale

    def place(self, features: torch.Tensor, region: torch.Tensor, confidence: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """Positions [B, 2] (float64): `start` moved by the predicted offset."""
        return self.apply_offset(start, self(features, region, confidence).double())

    @staticmethod
    def apply_offset(centroids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Centroids [B, 2] (lat, lon) + offsets [B, 2] → positions, latitude clamped, longitude wrapped."""
        lat = (centroids[:, 0] + offsets[:, 0]).clamp(-90.0, 90.0)
        lon = torch.remainder(centroids[:, 1] + offsets[:, 1] + 180.0, 360.0) - 180.0
        return torch.stack([lat, lon], dim=1)


class NeighbourSniper(TrainRowsIndex, nn.Module):
    """The mean position of the `k` training locations most similar (cosine) to a location, weighted
    by similarity.

    On a few dozen training locations a regressor cannot learn offsets (it keeps its untrained
    epoch 0), while a neighbour average needs nothing fitted but `k`, chosen on val. Averaging
    rather than taking the nearest one hedges between far-apart look-alikes: the tail (p90) is
    where a weak signal pays. The locations (unit features, positions) are buffers, so the
    checkpoint carries its own index: the train locations, then (`train_size` onwards) the val
    ones added once val has chosen (`with_val`).
    """

    def __init__(self, in_dim: int, size: int, k: int = 10, train_size: int | None = None) -> None:
        super().__init__()
        self.model_kwargs = {"in_dim": in_dim, "size": size, "k": k, "train_size": train_size}
        self.k, self.train_size = k, checked_train_size(train_size, size)
        self.register_buffer("keys", torch.zeros(size, in_dim))
        self.register_buffer("latlon", torch.zeros(size, 2, dtype=torch.float64))

    @classmethod
    def of(cls, features: torch.Tensor, latlon: torch.Tensor, k: int, train_size: int | None = None) -> "NeighbourSniper":
        """A sniper over these locations (features [N, D], positions [N, 2]; the first `train_size` from train)."""
        sniper = cls(features.shape[1], features.shape[0], k, train_size)
        sniper.keys.copy_(torch.nn.functional.normalize(features.float(), dim=1))
        sniper.latlon.copy_(latlon.double())
        return sniper

    def place_inputs(self, inputs: SniperInputs) -> torch.Tensor:
        """Positions [B, 2] (float64) from the fused features alone."""
        from geolocate.geo import spherical_mean

        keys, latlon = self.searchable(self.keys, self.latlon)
        sims = torch.nn.functional.normalize(inputs.features.float(), dim=1) @ keys.T
        top = sims.topk(min(self.k, len(keys)), dim=1)
        weights = (top.values.clamp(min=0.0) + 1e-6).double().numpy()
        members = latlon[top.indices].numpy()  # [B, k, 2]
        lat, lon = spherical_mean(members[..., 0], members[..., 1], weights)
        return torch.as_tensor(np.stack([lat, lon], axis=1))
