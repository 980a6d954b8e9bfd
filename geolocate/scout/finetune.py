"""Scouts trained through their backbone (`model.train_last_n_blocks`, or an unfrozen backbone).

The default scout trains its fusion head on cached features. When some backbone blocks are
trainable the features change every step, so this path reads the views as images instead:
a location is `{"views": [4, 3, H, W], "mask": [4], "label"}` (missing or unreadable views are
zeros with mask False), trained with the model's own train transform and view dropout, the best
epoch kept by val log-loss. Afterwards the scout is used exactly like a cached one: its
fine-tuned backbone has a new fingerprint, so the ensemble and the sniper read fresh features.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from geolocate.schemas import VIEWS
from geolocate.scout.heads import VIEW_DROPOUT, FitResult, drop_views


class LocationViews(Dataset):
    """Locations of one split as image tensors of their four views."""

    def __init__(self, frame: pl.DataFrame, files: dict[str, Path], transform, side: int) -> None:
        self.views = [[files.get(i) if i else None for i in frame[v].to_list()] for v in VIEWS]
        self.labels = frame["label"].to_list()
        self.transform, self.side = transform, side

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        from geolocate.data.images import BadImage, load_rgb

        images, mask = torch.zeros(len(VIEWS), 3, self.side, self.side), torch.zeros(len(VIEWS), dtype=torch.bool)
        for v in range(len(VIEWS)):
            path = self.views[v][i]
            try:
                images[v], mask[v] = self.transform(load_rgb(path, self.side)), True
            except (BadImage, TypeError):  # TypeError: no file for this view
                continue
        return {"views": images, "mask": mask, "label": torch.tensor(self.labels[i], dtype=torch.long)}


def fit_end_to_end(model, frame: pl.DataFrame, files: dict[str, Path], cfg, seed: int) -> FitResult:
    """Train the trainable part of `model` (head and unfrozen blocks) on images; best val log-loss kept."""
    from geolocate.data.loaders import make_loader
    from geolocate.data.transforms import eval_transform, input_size, train_transform
    from geolocate.train.optim import build_optimizer, build_scheduler

    side = input_size(model.data_config, cfg.data.image_size)
    split = {s: frame.filter(pl.col("split") == s) for s in ("train", "val")}
    train = make_loader(LocationViews(split["train"], files, train_transform(model.data_config, cfg.data), side),
                        cfg.train.batch_size, True, cfg.data.num_workers, seed)
    val = make_loader(LocationViews(split["val"], files, eval_transform(model.data_config, cfg.data.image_size), side),
                      cfg.train.batch_size, False, cfg.data.num_workers, seed)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train, len(train))
    gen, best, history, start = torch.Generator().manual_seed(seed), (float("inf"), None, 0), [], time.perf_counter()
    for epoch in range(cfg.train.epochs):
        loss = _train_epoch(model, train, optimizer, scheduler, gen)
        val_nll, val_acc = _validate(model, val)
        history.append({"epoch": epoch + 1, "train_loss": loss, "val_nll": val_nll, "val_acc_top1": val_acc})
        _report_epoch(history[-1], cfg.train.epochs, time.perf_counter() - start)
        if val_nll < best[0]:
            best = (val_nll, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch + 1)
    return FitResult(best[1] or copy.deepcopy(model.state_dict()), best[2] or cfg.train.epochs, history, time.perf_counter() - start)


def _report_epoch(row: dict, epochs: int, elapsed_s: float) -> None:
    """One line per epoch on stderr: an epoch through a backbone can take minutes, so never stay silent."""
    from geolocate.console import console

    console.print(f"  fine-tune epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.3f}, "
                  f"val log-loss {row['val_nll']:.3f}, val top-1 {row['val_acc_top1']:.1%} ({elapsed_s:.0f} s)")


def _train_epoch(model, loader, optimizer, scheduler, gen: torch.Generator) -> float:
    model.train()
    losses = []
    for batch in loader:
        mask = drop_views(batch["mask"], VIEW_DROPOUT, gen)
        loss = F.cross_entropy(model(batch["views"], mask), batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses)) if losses else float("nan")


@torch.inference_mode()
def _validate(model, loader) -> tuple[float, float]:
    from geolocate.evaluate.calibration import nll

    model.eval()
    logits, labels = [], []
    for batch in loader:
        logits.append(model(batch["views"], batch["mask"]).double())
        labels.append(batch["label"])
    z, y = torch.cat(logits).numpy(), torch.cat(labels).numpy()
    return nll(z, y), float((z.argmax(axis=1) == y).mean())
