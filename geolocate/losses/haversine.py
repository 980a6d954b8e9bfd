"""Differentiable great-circle distance in torch, and the sniper's haversine loss.

The numpy twin lives in `geolocate.geo`; this one exists because the sniper learns from
distances, so the gradient must be finite everywhere, including at zero distance (a perfect
prediction) where `sqrt` has an infinite derivative, and at antipodes where `asin` does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from geolocate.geo import EARTH_RADIUS_KM


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient is 0 (not inf or nan) where x is 0.

    The double `where` matters: a single `where(x > 0, sqrt(x), 0)` still back-propagates
    0 * inf = nan through the unused branch.
    """
    positive = x > torch.finfo(x.dtype).tiny
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def haversine_km_torch(lat1: torch.Tensor, lon1: torch.Tensor, lat2: torch.Tensor, lon2: torch.Tensor) -> torch.Tensor:
    """Great-circle distance in km between points given in degrees; broadcasts like torch ops.

    Uses `2R·atan2(√a, √(1−a))` rather than `2R·asin(√a)`: the same value, but atan2's gradient
    is bounded (its two arguments' squares sum to 1), so only the square roots need guarding.
    Keep inputs float64 when sub-metre precision matters: float32 degrees resolve ~0.5 m.
    """
    to_rad = math.pi / 180.0
    phi1, phi2 = lat1 * to_rad, lat2 * to_rad
    dphi, dlmb = (lat2 - lat1) * to_rad, (lon2 - lon1) * to_rad
    a = torch.sin(dphi / 2) ** 2 + torch.cos(phi1) * torch.cos(phi2) * torch.sin(dlmb / 2) ** 2
    a = a.clamp(0.0, 1.0)  # rounding can push a a hair outside [0, 1]
    return 2 * EARTH_RADIUS_KM * torch.atan2(_safe_sqrt(a), _safe_sqrt(1 - a))


def pairwise_haversine_km_torch(points_a: torch.Tensor, points_b: torch.Tensor) -> torch.Tensor:
    """Distance matrix [A, B] in km between `points_a` [A, 2] and `points_b` [B, 2] (lat, lon degrees)."""
    a, b = points_a[:, None, :], points_b[None, :, :]
    return haversine_km_torch(a[..., 0], a[..., 1], b[..., 0], b[..., 1])


class HaversineLoss(nn.Module):
    """Great-circle error in km between predicted and true (lat, lon) pairs.

    Args:
        reduction: "mean" (the default; the sniper's training loss), "sum" or "none".
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")
        self.reduction = reduction

    def forward(self, pred_latlon: torch.Tensor, true_latlon: torch.Tensor) -> torch.Tensor:
        """Distances (reduced) between `pred_latlon` [B, 2] and `true_latlon` [B, 2], in km."""
        dist = haversine_km_torch(pred_latlon[..., 0], pred_latlon[..., 1], true_latlon[..., 0], true_latlon[..., 1])
        if self.reduction == "mean":
            return dist.mean()
        if self.reduction == "sum":
            return dist.sum()
        return dist
