"""Four-view heads: a fusion head or an L2 probe path on cached per-view features, or the whole
multi-view model through the images (`fit_through_images`, when backbone blocks train).

Every fit goes through `train.fitting` (best epoch kept, `train.patience` honoured) and ranks its
epochs with a `evaluate.choice.ValJudge` (fusion heads, probe path) or by val log-loss (through
the images, where the judge would need a pass over every view again). Plain tensors in, the best
state out; no disk I/O.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from geolocate.config import TrainConfig
from geolocate.data.views import ViewSet
from geolocate.evaluate.choice import ValJudge
from geolocate.models.multiview import head_outputs
from geolocate.train.fitting import FitResult, fit_epochs, small_ops

VIEW_DROPOUT = 0.2  # share of present views hidden per training step: missing views are normal at test time

# L2 strengths of the probe's regularisation path, weakest first. The strong end turns the
# probabilities into the class priors, whose weighted position is near the train centroid: the path
# runs from "read the photos" to "trivial", and val picks the point on it.
PROBE_L2 = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def optimizer_for(module: nn.Module, cfg: TrainConfig, epochs: int, steps: int):
    """AdamW + schedule of `train` for a head trained `epochs` epochs of `steps` steps (warm-up ≤ 1 epoch)."""
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


def fit_fusion_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int, judge: ValJudge) -> FitResult:
    """Cross-entropy on classes with view dropout; the kept state is the epoch `judge` ranks best on
    val, and training stops once `cfg.patience` epochs brought no better one (0: never)."""
    train, val, gen = data["train"], data["val"], torch.Generator().manual_seed(seed)
    optimizer, scheduler = optimizer_for(head, cfg, cfg.epochs, max(1, -(-len(train) // cfg.batch_size)))

    def run_epoch(epoch: int) -> dict:
        head.train()
        losses = []
        for batch in torch.randperm(len(train), generator=gen).split(cfg.batch_size):
            mask = drop_views(train.mask[batch], VIEW_DROPOUT, gen)
            losses.append(_step(F.cross_entropy(head(train.features[batch], mask), train.labels[batch]), optimizer, scheduler))
        return {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **judge.score(head_outputs(head, val)[0])}

    with small_ops():
        return fit_epochs(run_epoch, range(cfg.epochs), judge.key, cfg.patience, module=head)


def _step(loss: torch.Tensor, optimizer, scheduler) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def fit_probe_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int, judge: ValJudge) -> FitResult:
    """A linear probe (`train.probe.solve_logistic`) on the head's standardised fused features, once
    per L2 strength of `PROBE_L2`; keeps the one `judge` ranks best. `history` has one row per
    strength (its `epoch` is the strength's rank, 1 = weakest)."""
    from geolocate.train.probe import solve_logistic

    train, val = data["train"], data["val"]

    def run_epoch(rank: int) -> dict:
        loss = solve_logistic(head.classifier, x, train.labels, PROBE_L2[rank - 1])
        return {"epoch": rank, "l2": PROBE_L2[rank - 1], "train_loss": loss, **judge.score(head_outputs(head, val)[0])}

    with small_ops():
        torch.manual_seed(seed)
        head.fusion.fit_standardisation(train.features, train.mask)
        with torch.no_grad():
            x = head.fuse(train.features, train.mask).double()
        return fit_epochs(run_epoch, range(1, len(PROBE_L2) + 1), judge.key, 0, module=head)


def fit_vote_head(head: nn.Module, data: dict[str, ViewSet], cfg: TrainConfig, seed: int, judge: ValJudge,
                  with_probe: bool) -> FitResult:
    """A k-NN vote head (`models.votes`) over the train locations' probe features: the k nearest vote
    across regions, alone (`with_probe` False) or mixed with the probe's probabilities (the probe
    fitted first, `fit_probe_head`); k (and the mixing weight) chosen on val by `judge`, then the val
    locations join the index. `history` has one row per setting; `head.classifier` ends as the
    chosen `VoteClassifier`."""
    from geolocate.models.votes import VOTE_ALPHAS, VOTE_KS, VoteClassifier

    train = data["train"]
    if with_probe:
        probe = fit_probe_head(head, data, cfg, seed, judge)
        head.load_state_dict(probe.state)
    else:
        head.fusion.fit_standardisation(train.features, train.mask)
    linear = head.classifier
    with torch.no_grad():
        keys = head.fuse(train.features, train.mask)
    settings = [(k, a) for k in VOTE_KS for a in (VOTE_ALPHAS if with_probe else (1.0,)) if k <= len(train)] or [(len(train), 1.0)]

    def run_epoch(i: int) -> dict:
        k, alpha = settings[i - 1]
        head.classifier = VoteClassifier.of(linear, keys, train.labels, k, alpha)
        return {"epoch": i, "k": k, "alpha": alpha, **judge.score(head_outputs(head, data["val"])[0])}

    fit = fit_epochs(run_epoch, range(1, len(settings) + 1), judge.key, 0)
    k, alpha = settings[fit.best_epoch - 1]
    val = data["val"]  # joins the index now that it has chosen; evaluation measures val held out (`models.votes`)
    with torch.no_grad():
        val_keys = head.fuse(val.features, val.mask)
    head.classifier = VoteClassifier.joined(linear, (keys, train.labels), (val_keys, val.labels), k, alpha)
    head.model_kwargs["votes"] = head.classifier.settings
    fit.state = head.state_dict()
    return fit


def split_outputs(head: nn.Module, views: dict[str, ViewSet]) -> dict:
    """{split: {logits, fused, labels, latlon, ids}} of a fusion head over each split's `ViewSet`.

    Only test reads a vote head's whole index: val is held out of the index it joined (its figures
    and every choice on them stay out-of-sample), and so is train, whose outputs the sniper learns
    from (votes from val's places would carry val's answers into it)."""
    from geolocate.models.held_out import held_out

    out = {}
    for split, v in views.items():
        with held_out(head) if split != "test" else contextlib.nullcontext():
            logits, fused = head_outputs(head, v)
        out[split] = {"logits": logits, "fused": fused, "labels": v.labels.numpy(), "latlon": v.latlon.numpy(),
                      "ids": v.location_ids}
    return out


def fit_through_images(model, frame: pl.DataFrame, files: dict, cfg, seed: int) -> FitResult:
    """Train the trainable part of a multi-view `model` (head and unfrozen blocks) on the views as
    images, with the model's train transform and view dropout; the best val log-loss is kept and
    training stops once `train.patience` epochs brought no better one. One line per epoch on stderr:
    an epoch through a backbone can take minutes, so it never stays silent."""
    from geolocate.data.loaders import make_loader
    from geolocate.data.transforms import eval_transform, input_size, train_transform
    from geolocate.data.views import LocationViews

    side = input_size(model.data_config, cfg.data.image_size)
    split = {s: frame.filter(pl.col("split") == s) for s in ("train", "val")}
    train = make_loader(LocationViews(split["train"], files, train_transform(model.data_config, cfg.data), side),
                        cfg.train.batch_size, True, cfg.data.num_workers, seed)
    val = make_loader(LocationViews(split["val"], files, eval_transform(model.data_config, cfg.data.image_size), side),
                      cfg.train.batch_size, False, cfg.data.num_workers, seed)
    optimizer, scheduler = optimizer_for(model, cfg.train, cfg.train.epochs, len(train))
    gen, start = torch.Generator().manual_seed(seed), time.perf_counter()

    def run_epoch(epoch: int) -> dict:
        model.train()
        losses = [_step(F.cross_entropy(model(b["views"], drop_views(b["mask"], VIEW_DROPOUT, gen)), b["label"]),
                        optimizer, scheduler) for b in train]
        val_nll, val_acc = _validate_images(model, val)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "val_nll": val_nll, "val_acc_top1": val_acc}
        _say_epoch(row, cfg.train.epochs, time.perf_counter() - start)
        return row

    return fit_epochs(run_epoch, range(cfg.train.epochs), lambda row: (row["val_nll"],), cfg.train.patience, module=model)


def _say_epoch(row: dict, epochs: int, elapsed_s: float) -> None:
    from geolocate.console import console

    console.print(f"  fine-tune epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.3f}, "
                  f"val log-loss {row['val_nll']:.3f}, val top-1 {row['val_acc_top1']:.1%} ({elapsed_s:.0f} s)")


@torch.inference_mode()
def _validate_images(model, loader) -> tuple[float, float]:
    from geolocate.evaluate.calibration import nll

    model.eval()
    logits, labels = [], []
    for batch in loader:
        logits.append(model(batch["views"], batch["mask"]).double())
        labels.append(batch["label"])
    z, y = torch.cat(logits).numpy(), torch.cat(labels).numpy()
    return nll(z, y), float((z.argmax(axis=1) == y).mean())
