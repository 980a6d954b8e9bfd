"""`geolocate train` for France v1: one run (or several seeds, `train.seeds`), resumable, then evaluated and maybe promoted."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from geolocate import atomic
from geolocate.artifacts.secret_scan import check_text
from geolocate.config import GeolocateConfig, public_dict
from geolocate.console import console
from geolocate.errors import Interrupted
from geolocate.paths import ProjectPaths
from geolocate.train.distributed import Dist, setup, teardown


@dataclass
class RunSummary:
    """One finished run: where it is, its final metrics, whether it became the global best."""

    run_id: str
    run_dir: str
    metrics: dict
    became_best: bool
    evaluation: dict | None = None  # the whole `finish_evaluation` summary (gates, report path…)


def run_train(cfg: GeolocateConfig, paths: ProjectPaths, resume: str | None = None, seeds: int | None = None) -> list[RunSummary]:
    """Train `seeds` runs (seed, seed+1, …), or resume run `resume`; evaluate each on val and test."""
    check_text(json.dumps(public_dict(cfg), default=str), "the run's config.json")  # before anything is written
    d = setup(cfg.train.device)
    try:
        if resume:
            return [_resume(resume, paths, d)]
        from geolocate.train.seeds import train_seeds

        return train_seeds(cfg, seeds or cfg.train.seeds, lambda seeded: _train_new(seeded, paths, d), paths, write=d.is_main)
    finally:
        teardown(d)


def _train_new(cfg: GeolocateConfig, paths: ProjectPaths, d: Dist) -> RunSummary | None:
    from geolocate.artifacts.rundir import RunDir
    from geolocate.train.heads import candidate_heads, train_heads
    from geolocate.train.setup import build_session

    session = build_session(cfg, paths, d)
    n_train = len(session.train_loader.dataset)
    heads = candidate_heads(cfg, n_train)
    run = None
    if d.is_main:
        run = RunDir.create(paths, cfg.profile or "default", latest=False)
        atomic.write_json(run.config, public_dict(cfg))
        console.print(f"run [bold]{run.run_id}[/]: {session.classes.height} classes, "
                      f"{n_train} train / {len(session.val_loader.dataset)} val photos")
    with _resume_hint(run):
        result = train_heads(session, run, heads)
    return _finish(session, run, result) if d.is_main else None


@contextmanager
def _resume_hint(run) -> Iterator[None]:
    """Turn Ctrl-C into the command that resumes this run (a plain re-run would start a new one)."""
    try:
        yield
    except KeyboardInterrupt:
        if run is None:
            raise
        if run.has_checkpoint:
            raise Interrupted(f"resume run {run.run_id} with `geolocate train --resume {run.run_id}`") from None
        raise Interrupted(f"no epoch of run {run.run_id} finished, so there is nothing to resume; "
                          "run the same command to start again") from None


def _resume(ref: str, paths: ProjectPaths, d: Dist) -> RunSummary | None:
    from geolocate.artifacts.checkpoint import read_checkpoint
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.artifacts.state import load_state, restore_rng_state
    from geolocate.artifacts.consistency import check_same_data
    from geolocate.train.heads import read_plan, train_heads
    from geolocate.train.setup import build_session

    run = resolve_run(ref, paths)
    atomic.sweep_temps(run.root)  # what the killed run left half-written
    cfg = run.read_config()
    plan = read_plan(run) or {"candidates": ["finetune"]}
    if plan.get("chosen"):
        return _complete(run, plan, paths, d)
    session = build_session(cfg, paths, d)
    if "finetune" not in plan["candidates"]:  # an interrupted probe: seconds of work, done again
        console.print(f"run [bold]{run.run_id}[/]: the probe did not finish; training it again")
        return _finish(session, run, train_heads(session, run, plan["candidates"])) if d.is_main else None
    state = load_state(run.state)
    sidecar, weights = read_checkpoint(run.last)
    check_same_data(sidecar, paths.data, session.classes["cell_id"].to_list(), f"resume run {run.run_id}")
    session.net.load_state_dict(weights)
    session.optimizer.load_state_dict(state["optimizer"])
    session.scheduler.load_state_dict(state["scheduler"])
    session.scaler.load_state_dict(state["extra"]["scaler"])
    restore_rng_state(state["rng"])
    console.print(f"resuming run [bold]{run.run_id}[/] at epoch {state['epoch'] + 1}/{cfg.train.epochs}")
    with _resume_hint(run if d.is_main else None):
        result = train_heads(session, run if d.is_main else None, plan["candidates"],
                             resume=(state["epoch"], state["extra"]["history"]))
    return _finish(session, run, result) if d.is_main else None


def _complete(run, plan: dict, paths: ProjectPaths, d: Dist) -> RunSummary | None:
    """`--resume` of a run whose heads were all trained: nothing to resume; evaluate it if that had not finished."""
    console.print(f"run [bold]{run.run_id}[/] is complete (head chosen on val: {plan['chosen']}): nothing to resume")
    if not d.is_main:
        return None
    if not run.metrics_json.is_file():
        from geolocate.evaluate.run import run_evaluate

        cfg = run.read_config()
        report = run_evaluate(cfg, paths, str(run.root))
    else:
        report = json.loads(run.metrics_json.read_text())
    return RunSummary(run.run_id, str(run.root), report["metrics"], bool(report.get("became_best")), report)


def _finish(session, run, result) -> RunSummary:
    from geolocate.evaluate.run import evaluate_session

    report = evaluate_session(session, run, fit_seconds=result.seconds)
    return RunSummary(run.run_id, str(run.root), report["metrics"], report["became_best"], report)
