"""The geo loss: cross-entropy against the true cell, blended with haversine label smoothing.

A photo 300 m from its cell's edge looks much like the neighbouring cell, so a plain one-hot
target punishes a near miss as hard as a guess 500 km away. The soft target spreads the
probability over cells by distance from the photo's true position:

    q_j ∝ exp(−(d(c_j, y) − min_k d(c_k, y)) / τ)

and the loss is `mix_ce · CE(hard label) + (1 − mix_ce) · CE(q)`. Subtracting the minimum keeps
the exponent ≤ 0, so no distance, however large, overflows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geolocate.losses.class_weights import resolve_class_weights
from geolocate.losses.haversine import pairwise_haversine_km_torch


def geo_soft_targets(centroids_latlon: torch.Tensor, true_latlon: torch.Tensor, tau_km: float) -> torch.Tensor:
    """Soft targets [B, C] (rows sum to 1), computed in float64.

    Args:
        centroids_latlon: [C, 2] cell centroids (lat, lon degrees).
        true_latlon: [B, 2] the photos' true positions.
        tau_km: temperature τ in km: the smaller, the closer to one-hot.
    """
    if tau_km <= 0:
        raise ValueError(f"tau_km must be positive, not {tau_km}")
    dist = pairwise_haversine_km_torch(true_latlon.to(torch.float64), centroids_latlon.to(torch.float64))
    excess = dist - dist.min(dim=1, keepdim=True).values
    weights = torch.exp(-excess / tau_km)
    return weights / weights.sum(dim=1, keepdim=True)


class GeoLoss(nn.Module):
    """`mix_ce · CE(labels) + (1 − mix_ce) · CE(geo soft targets)`, averaged over the batch.

    Args:
        centroids_latlon: [C, 2] cell centroids (lat, lon degrees), row = label.
        tau_km: temperature of the soft target in km (train.geo_tau_km).
        mix_ce: weight of the hard-label term (train.geo_mix_ce); 1 gives plain CE.
        class_weights: optional [C] weights of the hard-label term only (the soft term already
            spreads mass by geography, not by class frequency).
    """

    def __init__(
        self,
        centroids_latlon: torch.Tensor | np.ndarray | Sequence[Sequence[float]],
        tau_km: float,
        mix_ce: float,
        class_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= mix_ce <= 1.0:
            raise ValueError(f"mix_ce must be within [0, 1], not {mix_ce}")
        if tau_km <= 0:
            raise ValueError(f"tau_km must be positive, not {tau_km}")
        centroids = torch.as_tensor(np.array(centroids_latlon, dtype=np.float64))  # a copy: polars arrays are read-only
        if centroids.ndim != 2 or centroids.shape[1] != 2:
            raise ValueError(f"centroids_latlon must be [C, 2], got {tuple(centroids.shape)}")
        self.tau_km, self.mix_ce = float(tau_km), float(mix_ce)
        # Non-persistent buffers follow `.to(device)` (call it on the loss too) but stay out of
        # checkpoints; float64 centroids keep metre precision in the distances.
        self.register_buffer("centroids", centroids, persistent=False)
        weight = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weight, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, true_latlon: torch.Tensor) -> torch.Tensor:
        """Scalar loss for `logits` [B, C], `labels` [B] and `true_latlon` [B, 2]."""
        loss = logits.new_zeros(())
        if self.mix_ce > 0:
            weight = None if self.class_weights is None else self.class_weights.to(logits.dtype)
            loss = loss + self.mix_ce * F.cross_entropy(logits, labels, weight=weight)
        if self.mix_ce < 1:
            target = geo_soft_targets(self.centroids, true_latlon, self.tau_km).to(logits.dtype)
            soft = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
            loss = loss + (1.0 - self.mix_ce) * soft
        return loss


def build_criterion(train_cfg, centroids_latlon, class_counts) -> GeoLoss:
    """The training loss from `[train]`: the geo loss, or weighted CE when `geo_loss` is off.

    Both have the same call signature `(logits, labels, true_latlon)`, so the training loop
    does not care which one it got.

    Args:
        train_cfg: `geolocate.config.TrainConfig`.
        centroids_latlon: [C, 2] class centroids, row = label.
        class_counts: training photos per class, for the class weights.
    """
    weights = resolve_class_weights(
        class_counts, train_cfg.class_weights, train_cfg.class_weight_threshold, train_cfg.class_weight_sqrt
    )
    mix_ce = train_cfg.geo_mix_ce if train_cfg.geo_loss else 1.0
    return GeoLoss(centroids_latlon, tau_km=train_cfg.geo_tau_km, mix_ce=mix_ce, class_weights=weights)
