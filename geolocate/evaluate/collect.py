"""Run a classifier over a loader and keep what every metric needs (logits, truth, ids)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader


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
def collect_outputs(model: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None = None) -> Outputs:
    """Forward every batch of `loader` (model in eval mode) and gather the results on the CPU."""
    model.eval()
    logits, feats, labels, lats, lons, ids = [], [], [], [], [], []
    with_features = hasattr(model, "forward_with_features")
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast:
            out, features = model.forward_with_features(images) if with_features else (model(images), None)
        logits.append(out.float().cpu())
        if features is not None:
            feats.append(features.float().cpu())
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
