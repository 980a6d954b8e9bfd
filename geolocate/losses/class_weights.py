"""Inverse-frequency class weights for the cross-entropy, and the rule that turns them on.

Weights are `1 / count` (or its square root, gentler), normalised to mean 1 over the classes so
the loss keeps its scale whether weights are on or off. A class with no training photo cannot
be learned at all; it gets weight 0 and is left out of the imbalance and the normalisation, so
one empty class does not flatten every other weight.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

WeightMode = Literal["auto", "on", "off"]


def _as_counts(counts: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(counts, torch.Tensor):
        counts = counts.detach().cpu().numpy()
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"class counts must be a non-empty 1-D sequence, got shape {arr.shape}")
    if (arr < 0).any():
        raise ValueError("class counts must not be negative")
    if not (arr > 0).any():
        raise ValueError("every class count is zero: there is nothing to train on")
    return arr


def imbalance_ratio(counts: Sequence[int] | np.ndarray | torch.Tensor) -> float:
    """Largest class count over smallest non-zero class count (1.0 when perfectly balanced)."""
    arr = _as_counts(counts)
    present = arr[arr > 0]
    return float(present.max() / present.min())


def class_weights(counts: Sequence[int] | np.ndarray | torch.Tensor, sqrt: bool = True) -> torch.Tensor:
    """Inverse-frequency weights (float32 [C]), mean 1 over classes that have photos, 0 for empty ones.

    Args:
        counts: training photos per class, indexed by label.
        sqrt: use 1/√count instead of 1/count.
    """
    arr = _as_counts(counts)
    present = arr > 0
    weights = np.zeros_like(arr)
    weights[present] = 1.0 / arr[present]
    if sqrt:
        weights = np.sqrt(weights)
    weights[present] /= weights[present].mean()
    return torch.as_tensor(weights, dtype=torch.float32)


def resolve_class_weights(
    counts: Sequence[int] | np.ndarray | torch.Tensor,
    mode: WeightMode = "auto",
    threshold: float = 3.0,
    sqrt: bool = True,
) -> torch.Tensor | None:
    """The class weights the loss should use, or None for an unweighted loss.

    Args:
        counts: training photos per class, indexed by label.
        mode: "on" and "off" force the choice; "auto" weights only when
            `imbalance_ratio(counts) > threshold` (train.class_weight_threshold).
        threshold: imbalance above which "auto" turns weights on.
        sqrt: use the square root of inverse frequency (train.class_weight_sqrt).
    """
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"class weight mode must be 'auto', 'on' or 'off', not {mode!r}")
    if mode == "off" or (mode == "auto" and imbalance_ratio(counts) <= threshold):
        return None
    return class_weights(counts, sqrt=sqrt)
