"""Training the small heads on cached features: fusion scouts (cross-entropy on regions) and the
sniper (haversine loss). Plain tensors in, the best state (by a val score) out; no disk I/O.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geolocate.config import TrainConfig
from geolocate.scout.data import ViewSet

VIEW_DROPOUT = 0.2  # share of present views hidden per training step: missing views are normal at test time


@contextmanager
def small_ops():
    """One intra-op thread while training heads: their matrices are so small that thread
    hand-offs cost more than the maths (13x slower with 2 threads on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class FitResult:
    """The best weights of a head, when they were reached and the per-epoch history (`history[i]` is
    epoch `best_epoch`'s row for the sniper, whose history starts at epoch 0; fusion heads start at 1)."""

    state: dict
    best_epoch: int
    history: list[dict]
    seconds: float


def _optimizer(module: nn.Module, cfg: TrainConfig, epochs: int, steps: int):
    from geolocate.train.optim import build_optimizer, build_scheduler

    tcfg = cfg.model_copy(update={"epochs": epochs, "warmup_epochs": min(cfg.warmup_epochs, 1.0)})
    optimizer = build_optimizer(module, tcfg)
    return optimizer, build_scheduler(optimizer, tcfg, steps)


def drop_views(mask: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Hide each present view with probability `p`, never all of a location's views."""
    keep = mask & (torch.rand(mask.shape, generator=generator) >= p)
    empty = ~keep.any(dim=1)
    keep[empty] = mask[empty]
    return keep


def fit_fusion_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int) -> FitResult:
    """Cross-entropy on regions; the kept state is the epoch with the lowest val log-loss."""
    with small_ops():
        return _fit_fusion_head(head, data, cfg, seed)


def _fit_fusion_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int) -> FitResult:
    train, val, gen = data["train"], data["val"], torch.Generator().manual_seed(seed)
    steps = max(1, -(-len(train) // cfg.batch_size))
    optimizer, scheduler = _optimizer(head, cfg, cfg.epochs, steps)
    best, history, start = (float("inf"), None, 0), [], time.perf_counter()
    for epoch in range(cfg.epochs):
        head.train()
        order, losses = torch.randperm(len(train), generator=gen), []
        for batch in order.split(cfg.batch_size):
            mask = drop_views(train.mask[batch], VIEW_DROPOUT, gen)
            loss = F.cross_entropy(head(train.features[batch], mask), train.labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        logits, _ = head_outputs(head, val)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **_class_scores(logits, val.labels.numpy())}
        history.append(row)
        if row["val_nll"] < best[0]:
            best = (row["val_nll"], copy.deepcopy(head.state_dict()), epoch + 1)
    return FitResult(best[1], best[2], history, time.perf_counter() - start)


def _class_scores(logits: np.ndarray, labels: np.ndarray) -> dict:
    from geolocate.evaluate.calibration import nll
    from geolocate.evaluate.metrics import topk_accuracy

    return {"val_nll": nll(logits, labels), "val_acc_top1": topk_accuracy(logits, labels, 1)}


@torch.inference_mode()
def head_outputs(head: nn.Module, views: ViewSet, batch_size: int = 512) -> tuple[np.ndarray, torch.Tensor]:
    """(logits [L, C] float64, fused features [L, F]) of a fusion head in eval mode."""
    head.eval()
    logits, fused = [], []
    for start in range(0, len(views), batch_size):
        feats, mask = views.features[start:start + batch_size], views.mask[start:start + batch_size]
        z = head.fuse(feats, mask)
        fused.append(z)
        logits.append(head.classifier(z))
    if not logits:
        return np.zeros((0, head.classifier.out_features)), torch.zeros(0, head.out_dim)
    return torch.cat(logits).double().numpy(), torch.cat(fused)


@dataclass
class SniperInputs:
    """What the sniper sees for each location, and the truth it is scored against."""

    features: torch.Tensor  # [L, F] fused features (both scouts, concatenated)
    region: torch.Tensor  # [L] region whose centroid the offset starts from
    confidence: torch.Tensor  # [L] probability of that region
    centroid: torch.Tensor  # [L, 2] that region's centroid (lat, lon), float64
    truth: torch.Tensor  # [L, 2] true position, float64

    def __len__(self) -> int:
        return len(self.region)

    def take(self, index: torch.Tensor) -> "SniperInputs":
        return SniperInputs(*(t[index] for t in (self.features, self.region, self.confidence, self.centroid, self.truth)))


def sniper_positions(sniper: nn.Module, inputs: SniperInputs) -> torch.Tensor:
    """Predicted positions [L, 2] (float64): centroid + the sniper's offset."""
    offsets = sniper(inputs.features, inputs.region, inputs.confidence)
    return sniper.apply_offset(inputs.centroid, offsets.double())


def fit_sniper(sniper: nn.Module, train: SniperInputs, val: SniperInputs, cfg: TrainConfig, seed: int) -> FitResult:
    """Haversine loss on frozen features; the kept state is the epoch with the lowest val median km
    (val read at the *predicted* region, as prediction will be). Training stops early once val median
    km has not improved for `cfg.patience` epochs (0: never), as France v1's loop does."""
    with small_ops():
        return _fit_sniper(sniper, train, val, cfg, seed)


def _fit_sniper(sniper: nn.Module, train: SniperInputs, val: SniperInputs, cfg: TrainConfig, seed: int) -> FitResult:
    from geolocate.losses import HaversineLoss

    loss_fn, gen = HaversineLoss(), torch.Generator().manual_seed(seed)
    steps = max(1, -(-len(train) // cfg.batch_size))
    optimizer, scheduler = _optimizer(sniper, cfg, cfg.sniper_epochs, steps)
    # Epoch 0 is the untrained sniper (zero offsets: the centroid itself), so training never ends worse than that.
    initial = _median_km(sniper, val)
    best, history, start = (initial, copy.deepcopy(sniper.state_dict()), 0), [{"epoch": 0, "val_median_km": initial}], time.perf_counter()
    for epoch in range(cfg.sniper_epochs):
        sniper.train()
        losses = []
        for batch in torch.randperm(len(train), generator=gen).split(cfg.batch_size):
            part = train.take(batch)
            loss = loss_fn(sniper_positions(sniper, part), part.truth)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        median = _median_km(sniper, val)
        history.append({"epoch": epoch + 1, "train_km": float(np.mean(losses)), "val_median_km": median})
        if median < best[0]:
            best = (median, copy.deepcopy(sniper.state_dict()), epoch + 1)
        elif cfg.patience and epoch + 1 - best[2] >= cfg.patience:
            break
    return FitResult(best[1], best[2], history, time.perf_counter() - start)


@torch.inference_mode()
def _median_km(sniper: nn.Module, inputs: SniperInputs) -> float:
    from geolocate.losses import haversine_km_torch

    sniper.eval()
    pred = sniper_positions(sniper, inputs)
    return float(haversine_km_torch(pred[:, 0], pred[:, 1], inputs.truth[:, 0], inputs.truth[:, 1]).median())
