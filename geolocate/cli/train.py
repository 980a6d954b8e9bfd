"""`geolocate train`: train a model (v1 ResNet18, a tiny twin, or the scout-sniper phases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from geolocate.cli.app import ConfigOpt, JsonOpt, ProfileOpt, SetOpt, command, load
from geolocate.config import TRAIN_PHASES
from geolocate.console import console
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths


@command("train")
def train_command(
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue an interrupted run: 'latest', a run id or a run directory."),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, help="Train N seeds and report mean ± std of every metric."),
    phase: Optional[str] = typer.Option(None, "--phase", help="Scout-sniper phase: scout-clip, scout-convnext, sniper, ensemble or all."),
    as_json: JsonOpt = False,
) -> None:
    """Train on the split data; every epoch is checkpointed, the best run becomes models/best.

    Multi-GPU: torchrun --nproc-per-node N -m geolocate train --profile v1
    """
    if phase:
        if phase not in TRAIN_PHASES:
            raise UserError(f"--phase {phase!r}: choose one of {', '.join(TRAIN_PHASES)}")
        sets = [*(sets or []), f"train.phase={json.dumps(phase)}"]
    cfg = load(config, profile, sets)
    paths = ProjectPaths.from_config(cfg.paths)
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.systems import trainer

    run = trainer(cfg, resolve_run(resume, paths).root if resume else None)
    summaries = [s for s in run(cfg, paths, resume=resume, seeds=seeds) if s is not None]
    if as_json:
        print(json.dumps([s.__dict__ for s in summaries], indent=2, default=str))
    for s in summaries:
        report = Path(s.run_dir) / "REPORT.md"
        where = f"report {report}" if report.is_file() else f"run directory {s.run_dir}"
        console.print(f"[green]✓[/] run {s.run_id}: {where}" + (" (new global best)" if s.became_best else ""))
