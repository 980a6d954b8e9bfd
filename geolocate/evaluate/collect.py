"""Run a classifier over a loader and keep what every metric needs (logits, truth, ids)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from geolocate.data.tta import average_views, flatten_views


@dataclass
class Outputs:
    """Logits of one split, with each photo's true class and position."""

    logits: np.ndarray  # [N, C] float32
    labels: np.ndarray  # [N] int64
    lat: np.ndarray  # [N] float64
    lon: np.ndarray  # [N] float64
    image_ids: list[str]
    embeddings: np.ndarray | None = None  # [N, D] pooled features, when the model exposes them (retrieval)


@torch.inference_mode()
def collect_outputs(model: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None = None,
                    views: int = 1) -> Outputs:
    """Forward every batch of `loader` (model in eval mode) and gather the results on the CPU.

    With `views` > 1 each sample's image is its test-time views [views, C, H, W] (`data.tta`): they
    go through the network as rows of one batch and each photo's logits and embedding are their mean.
    """
    model.eval()
    logits, feats, labels, lats, lons, ids = [], [], [], [], [], []
    for batch in loader:
        out, features = _forward(model, batch["image"], device, amp_dtype, views)
        logits.append(out)
        if features is not None:
            feats.append(features)
        labels.append(batch["label"])
        lats.append(batch["lat"])
        lons.append(batch["lon"])
        ids.extend(batch["image_id"])
    return Outputs(
        torch.cat(logits).numpy(),
        torch.cat(labels).numpy(),
        torch.cat(lats).double().numpy(),
        torch.cat(lons).double().numpy(),
        ids,
        torch.cat(feats).numpy() if feats else None,
    )


def _forward(model: nn.Module, images: torch.Tensor, device: torch.device, amp_dtype: torch.dtype | None,
             views: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Float32 logits and embeddings (None without them) on the CPU, one row per photo."""
    if views > 1:
        images = flatten_views(images)
    images = images.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    with autocast:
        out, features = model.forward_with_features(images) if hasattr(model, "forward_with_features") else (model(images), None)
    out, features = out.float().cpu(), None if features is None else features.float().cpu()
    if views > 1:  # averaged in float32, after autocast: the mean of half-precision rows loses digits
        out, features = average_views(out, views), None if features is None else average_views(features, views)
    return out, features
