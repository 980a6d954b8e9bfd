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


@dataclass
class ValJudge:
    """Scores a head on val as prediction reads it: the probability-weighted position over the top-k
    regions, against the best trivial baseline (majority region or train centroid) on the same val.

    Epochs and candidate heads are ranked by `val_score` (`bar_ratio`: below 1 beats the trivial bar
    on both median and p90), then by median km. Early epochs whose probabilities are still the class
    priors place a location near the train centroid, so this ranking can keep a prior rather than a
    head that learnt noise: on fifty training locations that is often the right call.
    """

    labels: np.ndarray  # [L] true regions of val
    latlon: np.ndarray  # [L, 2]
    centroids: np.ndarray  # [C, 2] region centroids
    bar: tuple[float, float]  # the trivial (median, p90) km on val
    topk: int = 5

    @classmethod
    def of(cls, data: dict[str, ViewSet], centroids: np.ndarray, topk: int = 5) -> "ValJudge":
        from geolocate.evaluate.baselines import Pool, trivial_bar

        train, val = data["train"], data["val"]
        pool = Pool(train.labels.numpy(), train.latlon.numpy())
        centroids = np.asarray(centroids, dtype=np.float64)
        return cls(val.labels.numpy(), val.latlon.numpy(), centroids, trivial_bar(pool, val.latlon.numpy(), centroids), topk)

    def score(self, logits: np.ndarray) -> dict:
        from geolocate.evaluate.baselines import bar_scores
        from geolocate.evaluate.calibration import nll
        from geolocate.evaluate.metrics import softmax, topk_accuracy
        from geolocate.evaluate.position import position_errors_km, weighted_positions

        err = position_errors_km(weighted_positions(softmax(logits), self.centroids, self.topk), self.latlon)
        scores = bar_scores(err, self.bar)
        return {"val_nll": nll(logits, self.labels), "val_acc_top1": topk_accuracy(logits, self.labels, 1),
                **{f"val_{key}": value for key, value in scores.items()}}

    @staticmethod
    def key(row: dict) -> tuple[float, float]:
        return row["val_score"], row["val_median_km"]


def fit_fusion_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int, judge: ValJudge) -> FitResult:
    """Cross-entropy on regions; the kept state is the epoch `judge` ranks best on val, and training
    stops once `cfg.patience` epochs brought no better one (0: never)."""
    with small_ops():
        return _fit_fusion_head(head, data, cfg, seed, judge)


def _fit_fusion_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int, judge: ValJudge) -> FitResult:
    train, val, gen = data["train"], data["val"], torch.Generator().manual_seed(seed)
    steps = max(1, -(-len(train) // cfg.batch_size))
    optimizer, scheduler = _optimizer(head, cfg, cfg.epochs, steps)
    best, history, start = None, [], time.perf_counter()
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
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **judge.score(logits)}
        history.append(row)
        if best is None or judge.key(row) < judge.key(best[0]):
            best = (row, copy.deepcopy(head.state_dict()))
        elif cfg.patience and row["epoch"] - best[0]["epoch"] >= cfg.patience:
            break
    return FitResult(best[1], best[0]["epoch"], history, time.perf_counter() - start)


# L2 strengths of the probe's regularisation path, weakest first. The strong end turns the
# probabilities into the class priors, whose weighted position is near the train centroid: the path
# runs from "read the photos" to "trivial", and val picks the point on it.
PROBE_L2 = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def fit_probe_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int, judge: ValJudge) -> FitResult:
    """A linear probe (multinomial logistic regression, L-BFGS to convergence) on the head's
    standardised fused features, once per L2 strength of `PROBE_L2`; keeps the one `judge` ranks best.
    `history` has one row per strength (its `epoch` is the strength's rank, 1 = weakest)."""
    with small_ops():
        torch.manual_seed(seed)
        return _fit_probe_head(head, data, judge)


def _fit_probe_head(head: nn.Module, data: dict[str, ViewSet], judge: ValJudge) -> FitResult:
    train, val, start = data["train"], data["val"], time.perf_counter()
    head.fusion.fit_standardisation(train.features, train.mask)
    with torch.no_grad():
        x = head.fuse(train.features, train.mask).double()
    best, history = None, []
    for rank, strength in enumerate(PROBE_L2, start=1):
        loss = _solve_probe(head.classifier, x, train.labels, strength)
        logits, _ = head_outputs(head, val)
        row = {"epoch": rank, "l2": strength, "train_loss": loss, **judge.score(logits)}
        history.append(row)
        if best is None or judge.key(row) < judge.key(best[0]):
            best = (row, copy.deepcopy(head.state_dict()))
    return FitResult(best[1], best[0]["epoch"], history, time.perf_counter() - start)


def _solve_probe(classifier: nn.Linear, x: torch.Tensor, labels: torch.Tensor, strength: float) -> float:
    """Fit `classifier` to mean cross-entropy + strength/2·|W|², from zero (float64, deterministic)."""
    weight = torch.zeros(classifier.weight.shape, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classifier.bias.shape, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, tolerance_grad=1e-7, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, labels) + 0.5 * strength * weight.pow(2).sum()
        loss.backward()
        return loss

    loss = optimizer.step(objective)
    with torch.no_grad():
        classifier.weight.copy_(weight.float())
        classifier.bias.copy_(bias.float())
    return float(loss.detach())


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
    """Predicted positions [L, 2] (float64) from the sniper (a residual MLP or the neighbour average)."""
    return sniper.place(inputs.features, inputs.region, inputs.confidence, inputs.centroid)


def fit_sniper(sniper: nn.Module, train: SniperInputs, val: SniperInputs, cfg: TrainConfig, seed: int) -> FitResult:
    """Haversine loss on frozen features for `cfg.epochs` (the caller passes `scout.sniper_epochs`); the kept
    state is the epoch with the lowest val median km
    (val read at the *predicted* region, as prediction will be). Training stops early once val median
    km has not improved for `cfg.patience` epochs (0: never), as France v1's loop does."""
    with small_ops():
        return _fit_sniper(sniper, train, val, cfg, seed)


def _fit_sniper(sniper: nn.Module, train: SniperInputs, val: SniperInputs, cfg: TrainConfig, seed: int) -> FitResult:
    from geolocate.losses import HaversineLoss

    loss_fn, gen = HaversineLoss(), torch.Generator().manual_seed(seed)
    steps = max(1, -(-len(train) // cfg.batch_size))
    optimizer, scheduler = _optimizer(sniper, cfg, cfg.epochs, steps)
    # Epoch 0 is the untrained sniper (zero offsets: the centroid itself), so training never ends worse than that.
    initial = _median_km(sniper, val)
    best, history, start = (initial, copy.deepcopy(sniper.state_dict()), 0), [{"epoch": 0, "val_median_km": initial}], time.perf_counter()
    for epoch in range(cfg.epochs):
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
