"""`RetrievalSniper`: the single-photo system's retrieval refinement as a four-view sniper.

It lives beside `evaluate.retrieval`, whose numpy refinement it runs (a model one layer down could
not import it), and answers `place_inputs(inputs)` like the other index sniper
(`models.sniper.NeighbourSniper`), so `models.sniper.sniper_positions` places with it.
"""

from __future__ import annotations

import torch
from torch import nn

from geolocate.evaluate.retrieval import METHODS
from geolocate.models.held_out import TrainRowsIndex, checked_train_size
from geolocate.models.sniper import SniperInputs


class RetrievalSniper(TrainRowsIndex, nn.Module):
    """Retrieval refinement over the training locations: the single-photo system's
    `evaluate.retrieval.refine_positions` (neighbours among the top regions, weighted by similarity
    and the regions' probabilities; `method` one of `evaluate.retrieval.METHODS`), on the fused features.

    Nothing is fitted: `top_cells`, `neighbours` and `method` are chosen on val
    (`evaluate.refine.choose_refinement`), then the val locations join the index (`train_size`
    onwards, as for `NeighbourSniper`). A location the index cannot place keeps its start.
    """

    def __init__(self, in_dim: int, size: int, top_cells: int = 5, neighbours: int = 10, method: str = "cluster",
                 train_size: int | None = None) -> None:
        super().__init__()
        self.model_kwargs = {"in_dim": in_dim, "size": size, "top_cells": top_cells, "neighbours": neighbours, "method": method,
                             "train_size": train_size}
        if method not in METHODS or type(top_cells) is not int or type(neighbours) is not int or min(top_cells, neighbours) < 1:
            raise ValueError(f"a retrieval setting is positive top_cells and neighbours and a method in {METHODS}, not "
                             f"{top_cells!r}, {neighbours!r}, {method!r}")
        self.top_cells, self.neighbours, self.method = top_cells, neighbours, method
        self.train_size = checked_train_size(train_size, size)
        self.register_buffer("keys", torch.zeros(size, in_dim))
        self.register_buffer("latlon", torch.zeros(size, 2, dtype=torch.float64))
        self.register_buffer("labels", torch.zeros(size, dtype=torch.long))

    @classmethod
    def of(cls, features: torch.Tensor, latlon: torch.Tensor, labels: torch.Tensor, setting: dict,
           train_size: int | None = None) -> "RetrievalSniper":
        """A sniper over these locations (features [N, D], positions [N, 2], regions [N]; the first `train_size` from train)."""
        sniper = cls(features.shape[1], features.shape[0], setting["top_cells"], setting["neighbours"], setting["method"], train_size)
        index = location_index(features, latlon, labels)
        for buffer, values in ((sniper.keys, index.embeddings), (sniper.latlon, index.latlon), (sniper.labels, index.labels)):
            buffer.copy_(torch.from_numpy(values))
        return sniper

    def place_inputs(self, inputs: SniperInputs) -> torch.Tensor:
        """Positions [B, 2] (float64) from the fused features and the ensemble's probabilities."""
        from geolocate.evaluate.retrieval import RetrievalIndex, placed_or, refine_positions

        if inputs.probs is None:
            raise ValueError("a retrieval sniper needs the ensemble's probabilities (SniperInputs.probs)")
        index = RetrievalIndex(*(b.numpy() for b in self.searchable(self.keys, self.latlon, self.labels)))
        placed = refine_positions(inputs.probs.double().numpy(), inputs.features.float().numpy(), index,
                                  self.top_cells, self.neighbours, self.method)
        return torch.as_tensor(placed_or(placed, inputs.centroid.double().numpy()))


def location_index(features: torch.Tensor, latlon: torch.Tensor, labels: torch.Tensor):
    """Locations as a `RetrievalIndex`, as a `RetrievalSniper` holds them: unit features (float32),
    positions (float64), regions; what val chooses the sniper's setting on."""
    from geolocate.evaluate.retrieval import RetrievalIndex

    return RetrievalIndex(torch.nn.functional.normalize(features.float(), dim=1).numpy(), latlon.double().numpy(),
                          labels.long().numpy())
