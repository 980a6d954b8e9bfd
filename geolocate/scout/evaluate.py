"""`geolocate evaluate` of a scout-sniper run: every phase measured on val and test, then the shared finish.

One column per phase (each scout alone, the ensemble at its position, and the ensemble moved by
the sniper) shows the regressor's gain as the difference of the last two. What is measured
after the sniper goes through `evaluate.finish` like a single-photo run's: area gates, the
conformal radius (written into the bundle, where the predictor reads it), warnings, plots with
the error map, the per-region table, promotion to `models/scout-sniper/` by the one rule, and
REPORT.md from its list of sections.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import polars as pl

from geolocate.config import GeolocateConfig
from geolocate.paths import ProjectPaths
from geolocate.scout.bundle import BUNDLE_NAME, SNIPER, combine, copy_bundle, load_sniper, position_of, require_bundle

AFTER = "ensemble + sniper"


def evaluate_scout_sniper(cfg: GeolocateConfig, paths: ProjectPaths, run_ref: str) -> dict:
    """Measure a scout-sniper run; returns the summary metrics.json holds."""
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.evaluate.finish import finish_evaluation
    from geolocate.evaluate.judge import judged_record
    from geolocate.scout.context import PhaseContext
    from geolocate.scout.regions import location_frame
    from geolocate.scout.regions import load_regions

    start = time.perf_counter()
    run = resolve_run(run_ref, paths)
    bundle = require_bundle(run.root)
    ctx = PhaseContext(run.read_config(), paths, run.root, location_frame(paths.data), load_regions(paths.data))
    measured = _measure(cfg, ctx, run, bundle)
    return finish_evaluation(cfg, paths, measured, "cpu", time.perf_counter() - start, judged_record(cfg, run))


def _measure(cfg: GeolocateConfig, ctx, run, bundle: dict):
    """Every phase on val and test, and what the finish needs of the final (after the sniper) positions."""
    from geolocate.evaluate.finish import Classes, Measured
    from geolocate.scout.regions import centroids_of, region_records

    classes = Classes.from_sidecar({"classes": region_records(ctx.regions)})
    sniper, _ = load_sniper(ctx.root / SNIPER)
    phases, splits = {}, {}
    for split in ("val", "test"):
        phases[split], splits[split] = _split_metrics(ctx, bundle, split, centroids_of(ctx.regions), sniper)
    scores = bundle.get("position_val_score") or {}
    return Measured(
        "scout-sniper", run, classes, splits["val"], splits["test"], location_baselines(cfg, ctx, classes.centroids),
        _val_history(ctx.root, sniper), scout_default(run.root, ctx.paths), lambda extra: _store(ctx.root, extra),
        position={"mode": position_of(bundle)["position"], "k": position_of(bundle)["topk"], "title": "Position before the sniper",
                  "scores": {mode: {"score": v} for mode, v in scores.items()} if ctx.cfg.eval.position == "auto" else {}},
        extra={"phases": phases, "sniper_gain_median_km": _gain(phases["test"]), "head_selection": bundle.get("heads") or {},
               "tta": bundle.get("tta")},
        data={"regions": ctx.regions.height, "offset_at": ctx.cfg.scout.sniper_offset_at,
              "ensemble_weights": ", ".join(f"{p} {w:.3f}" for p, w in zip(bundle["scouts"], bundle["weights"]))},
        chosen_head=_chosen_heads(bundle), area="region",
        no_history="the last stage val chose (the sniper) is an index over the train and val locations, which trains "
                   "no epochs; the residual MLP's epochs describe a model this run does not use.",
        artifacts=("confusion_matrix.png", "geo_error.png", "error_map.png", "predictions.parquet", "metrics.json", BUNDLE_NAME))


def _chosen_heads(bundle: dict) -> str | None:
    """The heads val chose per scout ("scout-clip: mean, …"), None when no scout had a choice."""
    chosen = [f"{phase}: {r['head']}" for phase, rows in (bundle.get("heads") or {}).items() if len(rows) > 1
              for r in rows if r.get("chosen")]
    return ", ".join(chosen) or None


def _val_history(root: Path, sniper) -> list[float] | None:
    """The sniper MLP's val median per epoch; None when val chose an index sniper (it trained no epochs:
    the MLP's history is not the model's, so it says nothing of its stability)."""
    from geolocate.models.sniper import SniperRegressor

    if not isinstance(sniper, SniperRegressor):
        return None
    history = pl.read_csv(root / "sniper-metrics.csv") if (root / "sniper-metrics.csv").is_file() else pl.DataFrame()
    return history["val_median_km"].to_list() if "val_median_km" in history.columns else []


def _store(root: Path, extra: dict) -> None:
    """The radius and provenance go into the bundle, where the four-view predictor reads them."""
    from geolocate.scout.bundle import update_bundle

    update_bundle(root, **extra)


def location_baselines(cfg: GeolocateConfig, ctx, centroids: np.ndarray) -> dict:
    """Every baseline on the test locations, drawn from train + val; k-NN on the mean of a location's
    L2-normalised frozen view embeddings (the first scout's backbone before any training)."""
    from geolocate.evaluate.baselines import all_baselines
    from geolocate.scout.context import frozen_view_vectors, location_pool

    test = ctx.frame.filter(pl.col("split") == "test")
    if test.is_empty():
        return {}
    vectors = frozen_view_vectors(ctx) if cfg.eval.knn_baseline else None
    pool = ctx.frame.filter(pl.col("split").is_in(["train", "val"]))
    return all_baselines(location_pool(pool, vectors), location_pool(test, vectors), centroids)


def _split_metrics(ctx, bundle: dict, split: str, centroids: np.ndarray, sniper):
    """({phase: metrics}, the finish's `Split` after the sniper) of one split."""
    from geolocate.evaluate.finish import Split
    from geolocate.evaluate.metrics import geo_metrics
    from geolocate.evaluate.position import ScoredSplit, position_errors_km
    from geolocate.models.held_out import held_out
    from geolocate.scout.context import scout_outputs

    outs = [scout_outputs(ctx, p)[split] for p in bundle["scouts"]]
    labels, truth, ids = outs[0]["labels"], np.asarray(outs[0]["latlon"], dtype=np.float64), list(outs[0]["ids"])
    if not len(labels):
        empty = np.zeros((0, len(centroids)))
        return {}, Split(empty, empty, labels, truth.reshape(0, 2), ids, ScoredSplit({}, np.zeros((0, 2)), np.zeros(0)))
    table = {}
    for phase, out in zip(bundle["scouts"], outs):
        pred = centroids[out["logits"].argmax(axis=1)]
        table[phase] = geo_metrics(position_errors_km(pred, truth), out["logits"], labels)
    # Val is held out of an index sniper that took it in (`models.held_out`): it would find itself.
    with held_out(sniper) if sniper is not None and split != "test" else contextlib.nullcontext():
        combined = combine([o["logits"] for o in outs], [o["fused"] for o in outs], bundle["weights"], centroids, sniper,
                           **position_of(bundle))
    table["ensemble"] = geo_metrics(position_errors_km(combined.before, truth), combined.logits, labels)
    err = position_errors_km(combined.after, truth)
    table[AFTER] = geo_metrics(err, combined.logits, labels)
    return table, Split(combined.probs, combined.logits, labels, truth, ids, ScoredSplit(table[AFTER], combined.after, err))


def _gain(test_phases: dict) -> float | None:
    """How much the sniper moved the test median (ensemble minus after the sniper)."""
    before, after = test_phases.get("ensemble", {}), test_phases.get(AFTER, {})
    if "median_km" not in before or "median_km" not in after:
        return None
    return before["median_km"] - after["median_km"]


def scout_default(root: Path, paths: ProjectPaths):
    """The scout-sniper's default model: the run's bundle copied to `models/scout-sniper/` (`best.promote` decides)."""
    import json

    from geolocate import atomic
    from geolocate.artifacts.best import DefaultModel

    record = paths.scout_best / "metrics.json"

    def incumbent() -> dict | None:
        """The current default's val metrics; None (ranks last) when there is none or it is unreadable."""
        if not (paths.scout_best / BUNDLE_NAME).is_file():
            return None
        try:
            saved = json.loads(record.read_text(encoding="utf-8"))
            return (saved.get("val") or {}).get(AFTER)
        except (OSError, ValueError, AttributeError):
            return None

    def install(val: dict) -> None:
        paths.scout_best.mkdir(parents=True, exist_ok=True)
        copy_bundle(root, paths.scout_best, before_bundle=lambda: atomic.write_json(
            record, {"run_id": root.name, "val": {AFTER: {k: val.get(k) for k in ("median_km", "p90_km")}}}))

    def holder() -> str | None:
        try:
            return json.loads(record.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError):
            return None

    return DefaultModel(f"{paths.scout_best}/", incumbent, install, holder)
