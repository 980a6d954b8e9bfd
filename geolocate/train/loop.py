"""The training loop: `fit()` calls `train_one_epoch()` and `validate()`, checkpoints every epoch,
stops early on val median km, and can resume an interrupted run where it stopped."""

from __future__ import annotations

import math
import time

import torch
from rich.progress import TextColumn

from geolocate.console import console, progress
from geolocate.evaluate.collect import Outputs, collect_outputs
from geolocate.train import checkpointing
from geolocate.train.distributed import barrier, broadcast_flag, mean_across
from geolocate.train.fitting import EarlyStopping, FitResult
from geolocate.train.setup import Session


def train_one_epoch(s: Session, epoch: int) -> dict:
    """One pass over the train loader; returns mean loss and images/s."""
    s.model.train()
    loader = s.train_loader
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    # Reseeding per epoch makes the order (and worker seeds) depend only on seed and epoch,
    # so a resumed run sees exactly the batches the uninterrupted one would have.
    loader.generator.manual_seed(s.cfg.train.seed * 100_003 + epoch)
    steps = len(loader) if not s.cfg.train.max_steps_per_epoch else min(len(loader), s.cfg.train.max_steps_per_epoch)
    total_loss, seen, start = 0.0, 0, time.perf_counter()
    with progress(TextColumn("{task.fields[rate]} img/s  loss {task.fields[loss]}")) as bar:
        task = bar.add_task(f"epoch {epoch + 1}/{s.cfg.train.epochs}", total=steps, rate="-", loss="-")
        for step, batch in enumerate(loader):
            if step >= steps:
                break
            loss = _step(s, batch)
            n = batch["label"].shape[0]
            total_loss, seen = total_loss + loss * n, seen + n
            rate = seen / max(time.perf_counter() - start, 1e-9)
            bar.update(task, advance=1, rate=format_rate(rate), loss=f"{loss:.3f}")
    seconds = time.perf_counter() - start
    return {"train_loss": mean_across(s.dist, total_loss / max(seen, 1)), "images_per_s": seen * s.dist.world_size / max(seconds, 1e-9)}


def _step(s: Session, batch: dict) -> float:
    device = s.dist.device
    images = batch["image"].to(device, non_blocking=True)
    if device.type == "cuda" and s.cfg.train.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = batch["label"].to(device, non_blocking=True)
    latlon = torch.stack([batch["lat"], batch["lon"]], dim=1).to(device)
    with s.autocast():
        logits = s.model(images)
    loss = s.loss_fn(logits.float(), labels, latlon)
    s.optimizer.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    if s.cfg.train.grad_clip:
        s.scaler.unscale_(s.optimizer)
        torch.nn.utils.clip_grad_norm_(s.net.parameters(), s.cfg.train.grad_clip)
    s.scaler.step(s.optimizer)
    s.scaler.update()
    s.scheduler.step()
    return float(loss.detach())


def validate(s: Session, loader=None) -> tuple[dict, Outputs]:
    """Accuracy and km metrics of the bare model on `loader` (val by default)."""
    from geolocate.evaluate.summary import summarise

    outputs = collect_outputs(s.net, loader or s.val_loader, s.dist.device, s.amp_dtype)
    return summarise(outputs, s.centroids), outputs


def fit(s: Session, run, start_epoch: int = 0, history: list[dict] | None = None) -> FitResult:
    """Train from `start_epoch` to the end or until val median km stops improving (`train.fitting`)."""
    cfg, history = s.cfg.train, list(history or [])
    stopper = EarlyStopping(_val_key, cfg.patience, history)
    started, stopped = time.perf_counter(), False
    for epoch in range(start_epoch, cfg.epochs):
        row = {"epoch": epoch + 1, "lr": s.optimizer.param_groups[0]["lr"], **train_one_epoch(s, epoch)}
        if s.dist.is_main:
            val, _ = validate(s)
            row.update({f"val_{k}": v for k, v in val.items()})
            row["seconds"] = round(time.perf_counter() - started, 2)
            history.append(row)
            improved = stopper.update(row)
            checkpointing.save_epoch(s, run, epoch, row, history, improved)
            if epoch == start_epoch:
                console.print(epoch_header(), style="bold", markup=False)
            console.print(epoch_line(row, improved, cfg.epochs), markup=False)
            stopped = stopper.should_stop(epoch + 1)
        barrier(s.dist)
        if broadcast_flag(s.dist, stopped):
            if s.dist.is_main:
                console.print(f"[yellow]early stop[/]: val median km has not improved for {cfg.patience} epochs")
            break
    best = stopper.best or {"epoch": 0}
    return FitResult(int(best["epoch"]), best, history, stopped, time.perf_counter() - started)


def _val_key(row: dict) -> tuple[float, float]:
    """Lower val median km wins; p90 breaks ties (rows without val figures never win)."""
    return (row.get("val_median_km", math.inf), row.get("val_p90_km", math.inf))


# (header, row key, format, width): one line per epoch, at most 80 columns wide.
_EPOCH_COLUMNS = [("epoch", "epoch", "{}", 7), ("train loss", "train_loss", "{:.4f}", 10),
                  ("val top-1", "val_acc_top1", "{:.1%}", 9), ("val top-5", "val_acc_top5", "{:.1%}", 9),
                  ("val median km", "val_median_km", "{:.2f}", 13), ("val p90 km", "val_p90_km", "{:.2f}", 10),
                  ("img/s", "images_per_s", None, 7)]  # fmt: skip


def epoch_header() -> str:
    """The column names, printed once above the epoch lines."""
    return " ".join(f"{name:>{width}}" for name, _, _, width in _EPOCH_COLUMNS) + "  best"


def epoch_line(row: dict, improved: bool, epochs: int) -> str:
    """One epoch as one line under `epoch_header()`."""
    cells = []
    for _, key, fmt, width in _EPOCH_COLUMNS:
        value = row.get(key)
        if key == "epoch":
            text = f"{value}/{epochs}"
        elif not _finite(value):
            text = "-"
        else:
            text = format_rate(value) if fmt is None else fmt.format(value)
        cells.append(f"{text:>{width}}")
    return " ".join(cells) + ("  ★" if improved else "")


def format_rate(per_second: float) -> str:
    """Images per second: one decimal below 10 (a ResNet18 on a CPU does ~1.4), whole numbers above."""
    return f"{per_second:.1f}" if per_second < 10 else f"{per_second:,.0f}"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
