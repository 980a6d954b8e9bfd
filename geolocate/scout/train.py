"""`geolocate train --phase scout-clip | scout-convnext | ensemble | sniper | all` (scout-sniper).

Each phase writes its own output into the run directory and is skipped on `--resume` when that
output exists: the two scouts (fusion heads over a frozen backbone, trained on cached per-view
features, or through the images when `model.train_last_n_blocks` unfreezes some blocks; saved as
complete multi-view models so `predict` needs nothing else), the ensemble
weights (fitted on val log-loss), and the sniper. `all` runs them in that order; a single phase
other than `scout-clip` continues the latest scout-sniper run (or the one `--resume` names).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import torch

from geolocate import atomic
from geolocate.config import GeolocateConfig, public_dict
from geolocate.console import console
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths
from geolocate.train.run import RunSummary
from geolocate.scout.context import PhaseContext, scout_model_name, scout_outputs
from geolocate.train.ensemble import EnsembleFit
from geolocate.train.view_heads import split_outputs
from geolocate.scout.bundle import NEIGHBOURS_MODEL, PHASES, RETRIEVAL_MODEL, SCOUT_PHASES, SNIPER, phase_done, read_bundle, update_bundle


def run_train_scout_sniper(cfg: GeolocateConfig, paths: ProjectPaths, resume: str | None = None,
                           seeds: int | None = None) -> list[RunSummary]:
    """Run the phases `cfg.train.phase` asks for (all seeds when starting new runs), then evaluate."""
    from geolocate.train.seeds import train_seeds

    if resume or cfg.train.phase not in ("all", "scout-clip"):
        return [_train_run(cfg, paths, _existing_run(cfg, paths, resume), skip_done=bool(resume))]
    return train_seeds(cfg, seeds or cfg.train.seeds, lambda seeded: _train_run(seeded, paths, None, skip_done=False), paths)


def _existing_run(cfg: GeolocateConfig, paths: ProjectPaths, resume: str | None) -> Path:
    from geolocate.artifacts.rundir import resolve_run

    run = resolve_run(resume or "latest", paths)
    saved = run.read_config()
    if saved is None or not saved.train.phase:
        raise UserError(f"{run.root} is not a scout-sniper run; start one with `geolocate train --phase all`")
    return run.root


def _train_run(cfg: GeolocateConfig, paths: ProjectPaths, root: Path | None, skip_done: bool) -> RunSummary:
    from geolocate.scout.regions import location_frame
    from geolocate.scout.regions import load_regions

    from geolocate.artifacts.rundir import RunDir, point_latest

    new = root is None
    if new:
        root = RunDir.create(paths, cfg.profile or "scout-sniper", latest=False).root
        atomic.write_json(root / "config.json", public_dict(cfg))
    else:  # the run's own settings, with the phase asked for now
        phase = cfg.train.phase or "all"  # `train --resume RUN` alone finishes every phase left
        cfg = RunDir(root).read_config()
        cfg.train.phase = phase
    ctx = PhaseContext(cfg, paths, root, location_frame(paths.data), load_regions(paths.data))
    console.print(f"run [bold]{ctx.run_id}[/]: {ctx.regions.height} regions, "
                  + ", ".join(f"{n} {s}" for s, n in ctx.frame.group_by("split").len().sort("split").iter_rows()) + " locations")
    for phase in PHASES if cfg.train.phase == "all" else (cfg.train.phase,):
        if skip_done and phase_done(root, phase):
            console.print(f"[dim]phase {phase}: already done, skipped[/]")
            continue
        RUNNERS[phase](ctx, phase)
        if new:  # only a run with a finished phase becomes `runs/latest`: there is something to resume
            point_latest(paths.runs, RunDir(root))
            new = False
    return _finish(ctx)


def _finish(ctx: PhaseContext) -> RunSummary:
    if not phase_done(ctx.root, SNIPER) or not phase_done(ctx.root, "ensemble"):
        return RunSummary(ctx.run_id, str(ctx.root), {"phases": read_bundle(ctx.root)}, False)
    from geolocate.scout.evaluate import evaluate_scout_sniper

    report = evaluate_scout_sniper(ctx.cfg, ctx.paths, str(ctx.root))
    return RunSummary(ctx.run_id, str(ctx.root), report["phases"], report["became_best"], report)  # per phase: what --seeds aggregates


# ---------------------------------------------------------------- phases


def _run_scout(ctx: PhaseContext, phase: str) -> None:
    """The phase's head, chosen on val by the shared head choice among the candidates the config asks for."""
    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.scout.heads import FourViewSystem
    from geolocate.train.system import choose_head

    system = FourViewSystem(ctx, phase)
    chosen, table = choose_head(system, system.candidate_heads(int((ctx.frame["split"] == "train").sum())), what=phase)
    model, views, fingerprint = chosen.payload
    ctx.outputs[phase] = split_outputs(model.head, views)
    save_checkpoint(ctx.root / phase, model, _meta(ctx, phase, chosen.val, chosen.fit.best_epoch, feature_fingerprint=fingerprint,
                                                   head=chosen.head, head_selection=table))
    _write_history(ctx.root / f"{phase}-metrics.csv", chosen.fit.history)
    heads_done = {**(read_bundle(ctx.root).get("heads") or {}), phase: table}
    update_bundle(ctx.root, scouts=[p for p in SCOUT_PHASES if phase_done(ctx.root, p)], heads=heads_done)
    console.print(f"[green]✓[/] {phase} ({scout_model_name(ctx.cfg, phase)[0]}, {chosen.head} head): val median "
                  f"{chosen.val['val_median_km']:.2f} km, top-1 {chosen.val['val_acc_top1']:.1%}, best epoch "
                  f"{chosen.fit.best_epoch}, {chosen.fit.seconds:.1f} s" + ("" if chosen.head == "finetune" else " on cached features"))


def _meta(ctx: PhaseContext, phase: str, val: dict, epoch: int, **extra) -> dict:
    from geolocate.artifacts.digest import data_fingerprint
    from geolocate.scout.regions import region_records

    d = ctx.paths.data
    return {"classes": region_records(ctx.regions), "config": public_dict(ctx.cfg), "metrics": {"val": val},
            "epoch": epoch, "run_id": ctx.run_id, "phase": phase,
            "data_fingerprint": data_fingerprint([d.manifest, d.locations, d.location_split, d.regions]),
            **extra}


def _write_history(path: Path, history: list[dict]) -> None:
    with atomic.atomic_path(path) as tmp:
        pl.DataFrame(history).write_csv(tmp)


def _trained_scouts(ctx: PhaseContext) -> list[str]:
    scouts = [p for p in SCOUT_PHASES if phase_done(ctx.root, p)]
    if not scouts:
        raise UserError(f"run {ctx.run_id} has no trained scout; run `geolocate train --phase scout-clip` first")
    return scouts


def _run_ensemble(ctx: PhaseContext, phase: str) -> None:
    """Ensemble weights and position fitted on val, on the side `eval.tta` keeps (`evaluate.tta.choose_seen`:
    with auto, val's test-time views only when the ensemble's val position scores strictly better)."""
    from functools import cache

    from geolocate.evaluate.tta import Seen, choose_seen

    scouts = _trained_scouts(ctx)
    fitted = cache(lambda side: _fit_ensemble(ctx, scouts, side))  # per side; the side kept is not fitted twice
    sides = Seen("plain", "tta")  # side names: a side's outputs are computed only when it is fitted
    side, _, tta = choose_seen(ctx.cfg.eval.tta, sides, sides, lambda name: fitted(name).val)
    fit, position, topk, scores, _ = fitted(side)
    update_bundle(ctx.root, scouts=scouts, weights=fit.weights, ensemble_val_nll=fit.nll, single_val_nll=fit.single_nll,
                  position=position, position_topk=topk, position_val_score=scores, tta=tta)
    console.print(f"[green]✓[/] ensemble of {', '.join(scouts)}: weights {', '.join(f'{w:.2f}' for w in fit.weights)}, "
                  f"val log-loss {fit.nll:.3f} (scouts: {', '.join(f'{v:.3f}' for v in fit.single_nll)}); "
                  f"position: {position}; test-time views: {'on' if tta['enabled'] else 'off'}")


class _EnsembleFit(NamedTuple):
    """What val fits for the ensemble on one side (plain or test-time views)."""

    fit: EnsembleFit  # the weights and their val log-loss
    position: str
    topk: int
    scores: dict  # every position's val score, when val chose the position
    val: dict  # val's `bar_scores` at that position: what `eval.tta = auto` compares


def _fit_ensemble(ctx: PhaseContext, scouts: list[str], side: str) -> _EnsembleFit:
    from geolocate.evaluate.baselines import bar_scores
    from geolocate.evaluate.position import position_errors_km
    from geolocate.scout.bundle import combine
    from geolocate.scout.regions import centroids_of
    from geolocate.train.ensemble import fit_ensemble_weights

    val = [scout_outputs(ctx, p, side)["val"] for p in scouts]
    fit = fit_ensemble_weights([o["logits"] for o in val], val[0]["labels"])
    position, topk, scores = _choose_position(ctx, val, fit.weights)
    centroids = centroids_of(ctx.regions)
    placed = combine([o["logits"] for o in val], [o["fused"] for o in val], fit.weights, centroids, position=position, topk=topk)
    return _EnsembleFit(fit, position, topk, scores,
                        bar_scores(position_errors_km(placed.before, val[0]["latlon"]), _val_bar(ctx, centroids)))


def _choose_position(ctx: PhaseContext, val: list[dict], weights: list[float]) -> tuple[str, int, dict]:
    """(mode, regions it reads, every candidate's val score): `eval.position`, or with `auto` the one
    val (`val`: each scout's val outputs) ranks best by the one rule (`evaluate.position.choose_position`)."""
    from geolocate.evaluate.metrics import softmax
    from geolocate.evaluate.position import choose_position
    from geolocate.scout.bundle import ensemble_of
    from geolocate.scout.regions import centroids_of

    e = ctx.cfg.eval
    if e.position != "auto" or not len(val[0]["labels"]):
        return ("top1" if e.position == "auto" else e.position), e.weighted_topk, {}
    centroids = centroids_of(ctx.regions)
    probs = softmax(ensemble_of([o["logits"] for o in val], weights))
    chosen = choose_position(probs, val[0]["latlon"], centroids, e.weighted_topk, _val_bar(ctx, centroids))
    return chosen.mode, chosen.k, {name: s["score"] for name, s in chosen.scores.items()}


def sniper_inputs(ctx: PhaseContext, split: str, centroids: np.ndarray, at: str):
    """The sniper's inputs for a split, the offset read at the true or the predicted region.

    Why "true" is the default for training (`scout.sniper_offset_at`): it gives every training
    location a consistent target (its own region's centroid) and never asks the sniper to jump
    across regions, which a residual offset cannot do. Measured on synthetic multi-view features
    (benchmarks/results/scout.md): with a strong scout both choices give the same test median
    (the scout is right on train, so the regions coincide); with a weak one "predicted" was twice
    as far off as "true". Prediction (and val, for model selection) always reads the argmax region.
    """
    from geolocate.models.sniper import SniperInputs
    from geolocate.scout.bundle import combine, position_of

    bundle = read_bundle(ctx.root)
    outs = [scout_outputs(ctx, p)[split] for p in bundle["scouts"]]
    comb = combine([o["logits"] for o in outs], [o["fused"] for o in outs], bundle["weights"], centroids, **position_of(bundle))
    labels = outs[0]["labels"]
    region = labels if at == "true" else comb.top1
    confidence = comb.probs[np.arange(len(region)), region]
    # The offset starts where prediction will start it: the ensemble's position (top-1 or weighted);
    # "true" trains from the true region's centroid instead (see above).
    start = centroids[region] if at == "true" else comb.before
    return SniperInputs(torch.cat([o["fused"] for o in outs], dim=1).float(), torch.as_tensor(region),
                        torch.as_tensor(confidence).float(), torch.as_tensor(start),
                        torch.as_tensor(outs[0]["latlon"]), torch.as_tensor(comb.probs), torch.as_tensor(labels))


def _run_sniper(ctx: PhaseContext, phase: str) -> None:
    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.scout.regions import centroids_of
    from geolocate.train.sniper import train_sniper

    bundle = read_bundle(ctx.root)
    if not bundle.get("weights"):
        raise UserError(f"run {ctx.run_id} has no ensemble yet; run `geolocate train --phase ensemble` first")
    centroids = centroids_of(ctx.regions)
    at = ctx.cfg.scout.sniper_offset_at
    train = sniper_inputs(ctx, "train", centroids, at)
    val = sniper_inputs(ctx, "val", centroids, "predicted")
    sniper, table, fit = train_sniper(train, val, ctx.regions.height, ctx.cfg.train.model_copy(update={"epochs": ctx.cfg.scout.sniper_epochs}),
                                      _val_bar(ctx, centroids))
    chosen = next(row for row in table if row["chosen"])
    meta = _meta(ctx, phase, {"median_km": chosen["val_median_km"], "p90_km": chosen["val_p90_km"]}, fit.best_epoch,
                 offset_at=at, sniper_selection=table)
    if chosen["head"] == "mlp":
        meta["model"] = {"name": "sniper_residual_mlp", "kwargs": sniper.model_kwargs, "num_classes": ctx.regions.height}
    else:  # a neighbour average or retrieval has no region table: its sidecar lists none
        name = RETRIEVAL_MODEL if chosen["head"].startswith("retrieval") else NEIGHBOURS_MODEL
        meta.update(model={"name": name, "kwargs": sniper.model_kwargs, "num_classes": 0}, classes=[])
    meta["preprocessing"] = None
    save_checkpoint(ctx.root / SNIPER, sniper, meta)
    _write_history(ctx.root / "sniper-metrics.csv", fit.history)
    heads = {**(bundle.get("heads") or {}), **({SNIPER: table} if len(table) > 1 else {})}
    update_bundle(ctx.root, sniper=SNIPER, offset_at=at, heads=heads)
    what = f"residual MLP, best epoch {fit.best_epoch} (0 = unmoved)" if chosen["head"] == "mlp" else chosen["head"]
    console.print(f"[green]✓[/] sniper: {what}: val median {chosen['val_median_km']:.2f} km, p90 {chosen['val_p90_km']:.2f} km, "
                  f"{fit.seconds:.1f} s")


def _val_bar(ctx: PhaseContext, centroids: np.ndarray) -> tuple[float, float]:
    """The run's bar on val (`scout.context.location_val_bar`), after checking a scout is trained."""
    from geolocate.scout.context import location_val_bar

    _trained_scouts(ctx)
    return location_val_bar(ctx)


RUNNERS = {"scout-clip": _run_scout, "scout-convnext": _run_scout, "ensemble": _run_ensemble, "sniper": _run_sniper}
