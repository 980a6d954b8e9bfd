"""`geolocate evaluate --profile scout-sniper`: every phase measured on val and test.

One column per phase (each scout alone, the ensemble with the top-1 region's centroid as the
position, and the ensemble moved by the sniper), so the regressor's gain is visible as the
difference of the last two. Writes the same artifacts as v1 where they mean something:
REPORT.md, metrics.json, predictions.parquet (test locations), geo_error.png (after the sniper)
and confusion_matrix.png (regions). A run whose test median km beats the best scout-sniper so
far is copied to `models/scout-sniper/` (v1's `models/best` is left alone).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import polars as pl

from geolocate import atomic
from geolocate.config import GeolocateConfig, public_dict, validate_config
from geolocate.paths import ProjectPaths
from geolocate.schemas import VIEWS
from geolocate.scout.bundle import BUNDLE_NAME, SNIPER, combine, copy_bundle, load_sniper, position_of, require_bundle

AFTER = "ensemble + sniper"


def evaluate_scout_sniper(cfg: GeolocateConfig, paths: ProjectPaths, run_ref: str) -> dict:
    """Measure a scout-sniper run; returns {metrics, report_path, gates_pass, became_best}."""
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.scout.data import location_frame
    from geolocate.scout.context import PhaseContext
    from geolocate.scout.regions import centroids_of, load_regions

    start = time.perf_counter()
    root = resolve_run(run_ref, paths).root
    bundle = require_bundle(root)
    run_cfg = validate_config(json.loads((root / "config.json").read_text()), root / "config.json")
    ctx = PhaseContext(run_cfg, paths, root, location_frame(paths.data), load_regions(paths.data))
    centroids = centroids_of(ctx.regions)
    sniper, _ = load_sniper(root / SNIPER)
    metrics, rows = {}, {}
    for split in ("val", "test"):
        metrics[split], combined, outs = _split_metrics(ctx, bundle, split, centroids, sniper)
        rows[split] = (combined, outs)
    test_rows, val_rows = rows["test"], rows["val"]
    before, after = metrics["test"].get("ensemble", {}), metrics["test"].get(AFTER, {})
    metrics["sniper_gain_median_km"] = _gain(before, after)
    metrics["baselines"] = location_baselines(cfg, ctx, centroids)
    metrics["collapse"] = _collapse(ctx, val_rows)
    metrics["head_selection"] = bundle.get("heads") or {}
    return _write(ctx, cfg, metrics, test_rows, time.perf_counter() - start)


def _collapse(ctx, val_rows) -> str | None:
    from geolocate.console import console
    from geolocate.evaluate.baselines import collapse_warning

    combined, outs = val_rows
    warning = collapse_warning(combined.top1, outs[0]["labels"]) if combined is not None else None
    if warning:
        console.print(f"[yellow]![/] {warning}")
    return warning


def location_baselines(cfg: GeolocateConfig, ctx, centroids: np.ndarray) -> dict:
    """Every baseline on the test locations, drawn from train + val; k-NN on the mean of a location's
    L2-normalised frozen view embeddings (the first scout's backbone before any training)."""
    from geolocate.evaluate.baseline_data import frozen_embeddings
    from geolocate.evaluate.baselines import all_baselines
    from geolocate.scout.data import view_files

    test = ctx.frame.filter(pl.col("split") == "test")
    if test.is_empty():
        return {}
    files = view_files(ctx.frame, ctx.paths.data)
    vectors = frozen_embeddings(ctx.cfg, ctx.paths, files) if cfg.eval.knn_baseline else None
    pool = ctx.frame.filter(pl.col("split").is_in(["train", "val"]))
    return all_baselines(_location_pool(pool, vectors), _location_pool(test, vectors), centroids)


def _location_pool(frame: pl.DataFrame, vectors: dict | None):
    """Locations as a baseline `Pool`; with `vectors`, only those with at least one embedded view."""
    from geolocate.evaluate.baselines import Pool, l2_normalise

    pool = Pool(frame["label"].to_numpy().astype(np.int64), frame.select("lat", "lon").to_numpy())
    if vectors is None:
        return pool
    views = [[vectors[i] for i in ids if i in vectors] for ids in frame.select(VIEWS).rows()]
    keep = [r for r, found in enumerate(views) if found]
    embeddings = np.stack([l2_normalise(np.stack(views[r])).mean(axis=0) for r in keep]) if keep else None
    return Pool(pool.labels[keep], pool.latlon[keep], embeddings)


def _split_metrics(ctx, bundle: dict, split: str, centroids: np.ndarray, sniper) -> tuple[dict, object, list]:
    from geolocate.evaluate.metrics import geo_metrics
    from geolocate.evaluate.position import position_errors_km
    from geolocate.scout.context import scout_outputs

    outs = [scout_outputs(ctx, p)[split] for p in bundle["scouts"]]
    if not len(outs[0]["labels"]):
        return {}, None, outs
    labels, truth = outs[0]["labels"], outs[0]["latlon"]
    table = {}
    for phase, out in zip(bundle["scouts"], outs):
        pred = centroids[out["logits"].argmax(axis=1)]
        table[phase] = geo_metrics(position_errors_km(pred, truth), out["logits"], labels)
    combined = combine([o["logits"] for o in outs], [o["fused"] for o in outs], bundle["weights"], centroids, sniper,
                       **position_of(bundle))
    table["ensemble"] = geo_metrics(position_errors_km(combined.before, truth), combined.logits, labels)
    table[AFTER] = geo_metrics(position_errors_km(combined.after, truth), combined.logits, labels)
    return table, combined, outs


def _gain(before: dict, after: dict) -> float | None:
    if "median_km" not in before or "median_km" not in after:
        return None
    return before["median_km"] - after["median_km"]


def _write(ctx, cfg: GeolocateConfig, metrics: dict, test_rows, seconds: float) -> dict:
    from geolocate.evaluate.gates import all_pass, evaluate_gates
    from geolocate.evaluate.metrics import stability_mean_km, stability_std_km

    history = pl.read_csv(ctx.root / "sniper-metrics.csv")
    val_km = history["val_median_km"].to_list() if "val_median_km" in history.columns else []
    std = stability_std_km(val_km, cfg.eval.stability_last_k)
    gates = evaluate_gates(metrics["test"].get(AFTER, {}), std, cfg.eval.gates, metrics.get("baselines"),
                           stability_mean_km(val_km, cfg.eval.stability_last_k))
    if test_rows is not None and test_rows[0] is not None:
        _predictions(ctx, *test_rows)
        _plots(ctx, *test_rows)
    became_best = _promote(ctx.paths, ctx.root, metrics["val"].get(AFTER, {}), metrics["test"].get(AFTER, {}))
    atomic.write_json(ctx.root / "metrics.json", {**metrics, "gates": [g.as_dict() for g in gates], "gates_pass": all_pass(gates)})
    report = _report(ctx, metrics, gates, std, seconds, became_best)
    atomic.write_text(ctx.root / "REPORT.md", report)
    return {"metrics": metrics, "report_path": str(ctx.root / "REPORT.md"), "gates_pass": all_pass(gates), "became_best": became_best}


def _report(ctx, metrics: dict, gates, std: float, seconds: float, became_best: bool) -> str:
    from geolocate.evaluate.report import collect_environment, gate_basis, metrics_section, render_report
    from geolocate.scout.bundle import read_bundle

    bundle = read_bundle(ctx.root)

    test = [(f"test: {phase}", m) for phase, m in metrics["test"].items()]
    weights = ", ".join(f"{p} {w:.3f}" for p, w in zip(bundle["scouts"], bundle["weights"]))
    text = render_report(ctx.run_id, test, gates, public_dict(ctx.cfg), collect_environment("cpu"),
                         stability={"std_km": std, "last_k": ctx.cfg.eval.stability_last_k},
                         data_kpis={"regions": ctx.regions.height, "offset_at": ctx.cfg.train.sniper_offset_at,
                                    "ensemble_weights": weights,
                                    "sniper_gain_median_km": metrics.get("sniper_gain_median_km")},
                         baselines=metrics.get("baselines"), gate_basis=gate_basis(ctx.cfg.eval.gates),
                         warnings=[metrics.get("collapse")],
                         duration_s=seconds, became_best=became_best,
                         artifacts=("confusion_matrix.png", "geo_error.png", "predictions.parquet", "metrics.json", BUNDLE_NAME))
    val = [(f"val: {phase}", m) for phase, m in metrics["val"].items()]
    return text.replace("## Metrics", "## Metrics per phase (test)", 1) + "\n" + "\n".join(
        metrics_section(val)).replace("## Metrics", "## Metrics per phase (val)", 1) + "\n" + _heads_section(bundle, ctx.cfg)


def _heads_section(bundle: dict, cfg: GeolocateConfig) -> str:
    """Which head each scout trained, with every candidate's val figures when val chose it."""
    from geolocate.evaluate.report import head_selection_section

    lines = []
    for phase, rows in (bundle.get("heads") or {}).items():
        lines += head_selection_section(rows, f"Head of {phase}")
    if bundle.get("position"):
        how = " (chosen on val)" if cfg.eval.position == "auto" else " (eval.position)"
        lines += ["", f"Position before the sniper: **{bundle['position']}**{how}."]
    return "\n".join(lines) + ("\n" if lines else "")


def _predictions(ctx, combined, outs) -> None:
    from geolocate.evaluate.position import position_errors_km

    names = ctx.regions.sort("label")["region"].to_list()
    truth = outs[0]["latlon"]
    frame = pl.DataFrame({
        "location_id": outs[0]["ids"], "region": [names[i] for i in outs[0]["labels"]],
        "pred_region": [names[i] for i in combined.top1], "confidence": combined.confidence,
        "lat": truth[:, 0], "lon": truth[:, 1], "lat_before": combined.before[:, 0], "lon_before": combined.before[:, 1],
        "lat_after": combined.after[:, 0], "lon_after": combined.after[:, 1],
        "error_before_km": position_errors_km(combined.before, truth), "error_after_km": position_errors_km(combined.after, truth),
    })
    atomic.write_parquet(ctx.root / "predictions.parquet", frame)


def _plots(ctx, combined, outs) -> None:
    from geolocate.evaluate.plots import confusion_matrix_figure, geo_error_figure
    from geolocate.evaluate.position import position_errors_km

    names = ctx.regions.sort("label")["region"].to_list()
    for name, fig in (("geo_error.png", geo_error_figure(position_errors_km(combined.after, outs[0]["latlon"]))),
                      ("confusion_matrix.png", confusion_matrix_figure(outs[0]["labels"], combined.top1, names, names))):
        with atomic.atomic_path(ctx.root / name) as tmp:
            fig.savefig(tmp, format="png", dpi=80)


def _promote(paths: ProjectPaths, root: Path, val: dict, test: dict) -> bool:
    """Copy the run's bundle to `models/scout-sniper/` when it beats the current one on val.

    Selection uses validation only (median km, then p90), like France v1's `maybe_promote`, and
    under the same `models/.lock`: choosing on test would make the reported test figure
    optimistic. Test metrics are stored beside, for the report only.
    """
    from geolocate.artifacts.best import PROMOTE_WAIT_S, beats, best_key
    from geolocate.lock import DataLock

    if math.isinf(best_key(val)[0]):
        return False
    best = paths.scout_best / "metrics.json"
    paths.models.mkdir(parents=True, exist_ok=True)
    with DataLock(paths.models / ".lock", command="promote the scout-sniper best", wait_s=PROMOTE_WAIT_S):
        if (paths.scout_best / BUNDLE_NAME).is_file() and not beats(val, _incumbent_val(best)):
            return False
        paths.scout_best.mkdir(parents=True, exist_ok=True)
        copy_bundle(root, paths.scout_best, before_bundle=lambda: atomic.write_json(
            best, {"run_id": root.name, "val": {AFTER: _ranked(val)}, "test": {AFTER: _ranked(test)}}))
    return True


def _ranked(metrics: dict) -> dict:
    return {key: metrics.get(key) for key in ("median_km", "p90_km")}


def _incumbent_val(best: Path) -> dict | None:
    """The current best's val metrics; None (ranks last) when unreadable or selected on test by
    an older geolocate."""
    try:
        return (json.loads(best.read_text(encoding="utf-8")).get("val") or {}).get(AFTER)
    except (OSError, ValueError, AttributeError):
        return None
