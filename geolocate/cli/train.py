"""`geolocate train`: train a model (v1 ResNet18, a tiny twin, or the scout-sniper phases)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geolocate.cli.app import Invocation, checked_device, command, default_of
from geolocate.cli.evaluate import print_evaluation
from geolocate.config import TRAIN_PHASES
from geolocate.console import stdout
from geolocate.errors import UserError


@command("train")
def train_command(
    inv: Invocation,
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue an interrupted run: 'latest', a run id or a run directory."),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, help="Train N seeds and report mean ± std of every metric."),
    phase: Optional[str] = typer.Option(None, "--phase", help="Scout-sniper phase: scout-clip, scout-convnext, sniper, ensemble or all."),
    device: Optional[str] = typer.Option(None, "--device", help=f"auto, cpu, cuda, cuda:N or mps ({default_of('train.device')}).", show_default=False),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help=f"Epochs to train, as --set train.epochs=N ({default_of('train.epochs')}).", show_default=False),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=f"Photos (or locations) per step, as --set train.batch_size=N ({default_of('train.batch_size')}).", show_default=False),
) -> None:
    """Train on the split data; every epoch is checkpointed, the best run becomes models/best.

    Multi-GPU: torchrun --nproc-per-node N -m geolocate train --profile v1
    """
    cfg, paths = inv.cfg, inv.paths
    if phase:
        if phase not in TRAIN_PHASES:
            raise UserError(f"--phase {phase!r}: choose one of {', '.join(TRAIN_PHASES)}")
        cfg.train.phase = phase  # as --set train.phase=…
    cfg.train.epochs = epochs or cfg.train.epochs  # shortcuts for their keys: the run's saved config shows them
    cfg.train.batch_size = batch_size or cfg.train.batch_size
    cfg.train.device = checked_device(device, cfg.train.device)
    from geolocate.models.compat import check_torchvision
    from geolocate.systems import trainer

    check_torchvision()  # a mismatched torch/torchvision pair: one line with the fix, not a traceback mid-run
    run = trainer(cfg, paths, resume)
    summaries = [s for s in run(cfg, paths, resume=resume, seeds=seeds) if s is not None]
    if inv.as_json:
        inv.emit([s.__dict__ for s in summaries])
        return
    for s in summaries:
        if getattr(s, "evaluation", None):
            print_evaluation(s.evaluation)
        report = Path(s.run_dir) / "REPORT.md"
        where = f"report {report}" if report.is_file() else f"run directory {s.run_dir}"
        stdout.print(f"[green]✓[/] run {s.run_id}: {where}" + (" (new global best)" if s.became_best else ""), soft_wrap=True)
