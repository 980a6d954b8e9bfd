"""Heads on cached frozen-backbone features: France v1's linear probe and k-NN vote heads, and the
L2-path solver of the four-view probe (`solve_logistic`). All fit through `train.fitting`.

On a few hundred photos a full fine-tune costs minutes per epoch on a CPU and overfits; a linear
classifier on the pretrained backbone's pooled features trains in seconds. Photos are embedded
once through the shared feature cache (`models.features`, the eval transform), then only an
`nn.Linear` learns, with v1's criterion (geo loss, class weights) and AdamW, early-stopped on val
median km, over a small lr × weight-decay sweep picked on val (median km, then p90).

It trains on standardised features (AdamW's steps then suit every feature's scale) and folds the
standardisation back into the weights, so the result is exactly the model's own head on the
backbone's pooled features: the checkpoint is an ordinary v1 checkpoint.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from geolocate.console import console
from geolocate.evaluate.collect import Outputs
from geolocate.evaluate.summary import summarise
from geolocate.train.fitting import FitResult, fit_epochs

SWEEP = [(lr, wd) for lr in (3e-3, 1e-2, 3e-2) for wd in (1e-3, 1e-1)]  # (lr, weight decay)
MAX_EPOCHS = 300  # an epoch is one pass over a matrix: a few milliseconds
PATIENCE_SCALE = 10  # probe epochs are ~1000× cheaper and noisier than photo epochs: wait longer
BATCH = 256


@dataclass
class SplitFeatures:
    """One split's cached embeddings with each photo's class and true position."""

    x: torch.Tensor  # [N, D] float32
    labels: torch.Tensor  # [N] int64
    latlon: torch.Tensor  # [N, 2] float64
    ids: list[str]

    def outputs(self, logits: torch.Tensor) -> Outputs:
        """What the training metrics read (`evaluate.summary.summarise`)."""
        ll = self.latlon.numpy()
        return Outputs(logits.numpy(), self.labels.numpy(), ll[:, 0], ll[:, 1], self.ids)


def train_probe(s, net: nn.Module, splits: dict[str, SplitFeatures] | None = None) -> FitResult:
    """Embed the run's photos with `net`'s backbone (cached), fit the probe, copy it into `net.head`.

    The result's `state` is the folded probe (`weight`, `bias`); its rows name the sweep point (`lr`, `weight_decay`)."""
    started = time.perf_counter()
    splits = splits or embed_splits(s, net)
    train, val = splits["train"], splits["val"]
    patience = s.cfg.train.patience * PATIENCE_SCALE
    mean, std = standardiser(train.x)
    scaled = [SplitFeatures((f.x - mean) / std, f.labels, f.latlon, f.ids) for f in (train, val)]
    runs = [_fit_linear(*scaled, s.loss_fn.cpu(), s.centroids, lr, wd, patience, s.cfg.train.seed) for lr, wd in SWEEP]
    s.loss_fn.to(s.dist.device)
    best = min(runs, key=lambda r: (r.best_val["median_km"], r.best_val["p90_km"]))
    best.state = dict(zip(("weight", "bias"), fold_standardisation(best.state["weight"], best.state["bias"], mean, std)))
    best.seconds = time.perf_counter() - started
    copy_into_head(net, best.state)
    return best


def train_vote_head(s, net: nn.Module, with_probe: bool, bar: tuple[float, float]) -> FitResult:
    """A k-NN vote head (`models.votes`) over the train photos' cached embeddings: the k nearest vote
    across cells, alone or mixed with the probe's probabilities (`with_probe`: the probe trains first);
    k and the mixing weight chosen on val by the one rule (`evaluate.choice`, against `bar`), then
    the val photos join the index.
    `net.head` becomes the chosen `VoteClassifier` and `net.model_kwargs` names its settings."""
    from geolocate.evaluate.choice import rank, scored_row
    from geolocate.models.votes import VOTE_ALPHAS, VOTE_KS, VoteClassifier

    started = time.perf_counter()
    splits = embed_splits(s, net)
    train, val = splits["train"], splits["val"]
    if with_probe:
        train_probe(s, net, splits)
    linear = net.head.cpu()
    settings = [(k, a) for k in VOTE_KS for a in (VOTE_ALPHAS if with_probe else (1.0,)) if k <= len(train.labels)]

    def run_epoch(i: int) -> dict:
        k, alpha = settings[i - 1] if settings else (len(train.labels), 1.0)
        with torch.no_grad():
            scores = summarise(val.outputs(VoteClassifier.of(linear, train.x, train.labels, k, alpha)(val.x).double()), s.centroids)
        return {"epoch": i, "k": k, "alpha": alpha, **{f"val_{key}": v for key, v in scores.items()},
                **scored_row(scores["median_km"], scores["p90_km"], bar)}

    fit = fit_epochs(run_epoch, range(1, max(len(settings), 1) + 1), rank, 0)
    # Val joins the index now that it has chosen; evaluation measures val held out (`models.votes`).
    net.head = VoteClassifier.joined(linear, (train.x, train.labels), (val.x, val.labels),
                                     fit.best_row["k"], fit.best_row["alpha"]).to(s.dist.device)
    net.model_kwargs = {**net.model_kwargs, "votes": net.head.settings}
    fit.seconds = time.perf_counter() - started
    return fit


def embed_splits(s, net: nn.Module) -> dict[str, SplitFeatures]:
    """Train, val and test photos through the cache (test too: the evaluation's k-NN baselines read it)."""
    from geolocate.models.features import FeatureCache

    datasets = {"train": s.train_loader.dataset, "val": s.val_loader.dataset, "test": s.test_loader.dataset}
    files = {i: ds.data_root / p for ds in datasets.values() for i, p in zip(ds.image_ids, ds.paths)}
    with _input_size(net, s.cfg.data.image_size):
        cache = FeatureCache(s.paths.data.features, s.cfg.model.name, net, lock=s.paths.data.lock)
        rows, feats = cache.features(net, files, s.cfg.train.batch_size, s.dist.device)
    net.to(s.dist.device)
    return {name: _split_features(ds, rows, feats) for name, ds in datasets.items() if name != "test"}


@contextlib.contextmanager
def _input_size(net: nn.Module, size: int | None):
    """`net.data_config` at the run's input size (`data.image_size`), which the cache keys and embeds with."""
    original = net.data_config
    if size:
        net.data_config = {**original, "input_size": (3, int(size), int(size))}
    try:
        yield
    finally:
        net.data_config = original


def _split_features(ds, rows: dict[str, int], feats: torch.Tensor) -> SplitFeatures:
    keep = [i for i, image_id in enumerate(ds.image_ids) if image_id in rows]
    if len(keep) < len(ds.image_ids):
        console.print(f"[yellow]![/] probe: {len(ds.image_ids) - len(keep)} photos could not be read and are left out")
    index = torch.tensor([rows[ds.image_ids[i]] for i in keep], dtype=torch.long)
    latlon = torch.tensor([[ds.lats[i], ds.lons[i]] for i in keep], dtype=torch.float64).reshape(-1, 2)
    return SplitFeatures(feats[index].float(), torch.tensor([ds.labels[i] for i in keep], dtype=torch.long),
                         latlon, [ds.image_ids[i] for i in keep])


def standardiser(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of the train embeddings; a constant feature keeps std 1 (it stays 0)."""
    mean, std = x.mean(0), x.std(0)
    return mean, torch.where(std > 1e-6, std, torch.ones_like(std))


def fold_standardisation(weight, bias, mean, std) -> tuple[torch.Tensor, torch.Tensor]:
    """W·((x − μ)/σ) + b  =  (W/σ)·x + (b − (W/σ)·μ): the same logits from raw embeddings."""
    folded = weight.double() / std.double()
    return folded.float(), (bias.double() - folded @ mean.double()).float()


def copy_into_head(net: nn.Module, probe: dict) -> None:
    """The probe (`weight`, `bias`) becomes the classifier's own linear layer (eval mode: dropout is the identity)."""
    with torch.no_grad():
        net.head.weight.copy_(probe["weight"])
        net.head.bias.copy_(probe["bias"])


def _fit_linear(train: SplitFeatures, val: SplitFeatures, loss_fn, centroids: np.ndarray, lr: float, wd: float,
                patience: int, seed: int) -> FitResult:
    """One sweep point: AdamW epochs over shuffled batches, keeping the weights of the best val epoch."""
    layer = nn.Linear(train.x.shape[1], len(centroids))
    nn.init.zeros_(layer.weight)  # convex problem: a fixed start makes the sweep reproducible
    nn.init.zeros_(layer.bias)
    optimizer = torch.optim.AdamW([{"params": [layer.weight], "weight_decay": wd},
                                   {"params": [layer.bias], "weight_decay": 0.0}], lr=lr)
    order, started = torch.Generator().manual_seed(seed), time.perf_counter()

    def run_epoch(epoch: int) -> dict:
        loss = _epoch(layer, optimizer, loss_fn, train, order)
        scores = _validate(layer, val, centroids)
        return {"epoch": epoch, "lr": lr, "weight_decay": wd, "train_loss": loss,
                **{f"val_{k}": v for k, v in scores.items()}, "seconds": round(time.perf_counter() - started, 3)}

    return fit_epochs(run_epoch, range(1, MAX_EPOCHS + 1), _median_then_p90, patience, module=layer)


def _median_then_p90(row: dict) -> tuple[float, float]:
    return row["val_median_km"], row["val_p90_km"]


def _epoch(layer: nn.Linear, optimizer, loss_fn, train: SplitFeatures, order: torch.Generator) -> float:
    total = 0.0
    perm = torch.randperm(len(train.labels), generator=order)
    for start in range(0, len(perm), BATCH):
        batch = perm[start:start + BATCH]
        loss = loss_fn(layer(train.x[batch]), train.labels[batch], train.latlon[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch)
    return total / max(len(perm), 1)


@torch.no_grad()
def _validate(layer: nn.Linear, val: SplitFeatures, centroids: np.ndarray) -> dict:
    return summarise(val.outputs(layer(val.x)), centroids)


def solve_logistic(classifier: nn.Linear, x: torch.Tensor, labels: torch.Tensor, strength: float) -> float:
    """Fit `classifier` to mean cross-entropy + strength/2·|W|² on `x`, from zero, by L-BFGS to
    convergence (float64, deterministic): the four-view probe's path, one strength at a time."""
    import torch.nn.functional as F

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
