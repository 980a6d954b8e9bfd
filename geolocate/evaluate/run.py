"""`geolocate evaluate`: a run's best checkpoint on val and test, in km, with every artifact.

Temperature and position mode are fitted on val only, then applied to test, so the test figures
are honest. The fitted values go into the checkpoint's sidecar, where `predict` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from geolocate import atomic
from geolocate.config import GeolocateConfig, public_dict
from geolocate.evaluate.collect import Outputs
from geolocate.evaluate.metrics import softmax, stability_mean_km, stability_std_km
from geolocate.evaluate.position import ScoredSplit, choose_position_mode, score_split
from geolocate.evaluate.refine import apply_retrieval, public_record
from geolocate.paths import ProjectPaths


@dataclass
class Classes:
    """What evaluation needs of the classes: centroids, cell ids, cities."""

    centroids: np.ndarray
    cell_ids: list[str]
    cities: list[str]

    @classmethod
    def from_sidecar(cls, meta: dict) -> "Classes":
        rows = meta["classes"]
        return cls(np.array([[c["centroid_lat"], c["centroid_lon"]] for c in rows]),
                   [c["cell_id"] for c in rows], [str(c.get("city")) for c in rows])


def evaluate_session(s, run, fit_seconds: float | None = None) -> dict:
    """Evaluate the run `s` just trained (its data loaders are already built)."""
    from geolocate.artifacts.checkpoint import read_checkpoint, read_sidecar
    from geolocate.evaluate.collect import collect_outputs

    s.net.load_state_dict(read_checkpoint(run.best)[1])
    val = collect_outputs(s.net, s.val_loader, s.dist.device, s.amp_dtype)
    test = collect_outputs(s.net, s.test_loader, s.dist.device, s.amp_dtype)
    meta = read_sidecar(run.best)
    classes = Classes.from_sidecar(meta)
    train = _train_outputs(s.cfg, s.paths, s.net, meta, classes, s.dist.device) if s.cfg.eval.retrieval else None
    from geolocate.evaluate.judge import judged_record

    return finish_evaluation(s.cfg, s.paths, run, classes, val, test, str(s.dist.device), fit_seconds, train,
                             judged_record(s.cfg, run))


def run_evaluate(cfg: GeolocateConfig, paths: ProjectPaths, run_ref: str) -> dict:
    """Evaluate a finished run from disk: its best checkpoint on today's val and test photos.

    `cfg` judges it (`judge.judging_config` picks the run's own unless the user asked for
    another); metrics.json and REPORT.md record whose it was.
    """
    from geolocate.artifacts.checkpoint import load_checkpoint
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.cells import load_classes
    from geolocate.artifacts.consistency import check_same_data
    from geolocate.evaluate.judge import judged_record

    run = resolve_run(run_ref, paths)
    model, meta = load_checkpoint(run.best, paths)
    classes = Classes.from_sidecar(meta)
    check_same_data(meta, paths.data, load_classes(paths.data)["cell_id"].to_list(), f"evaluate run {run.run_id}")
    val, test = _outputs_from_disk(cfg, paths, model, meta, classes, ("val", "test"))
    train = _train_outputs(cfg, paths, model, meta, classes, "cpu") if cfg.eval.retrieval else None
    return finish_evaluation(cfg, paths, run, classes, val, test, "cpu", None, train, judged_record(cfg, run))


def _train_outputs(cfg, paths, model, meta, classes: Classes, device) -> Outputs | None:
    """Train photos under the eval transform (what the retrieval index holds); None for a model without embeddings."""
    if not hasattr(model, "forward_with_features"):
        return None
    return _outputs_from_disk(cfg, paths, model, meta, classes, ("train",), device)[0]


def _outputs_from_disk(cfg, paths, model, meta, classes: Classes, splits, device="cpu") -> list[Outputs]:
    import torch

    from geolocate.data.dataset import PhotoDataset
    from geolocate.data.frames import training_frame
    from geolocate.data.loaders import make_loader
    from geolocate.data.transforms import eval_transform
    from geolocate.evaluate.collect import collect_outputs

    frame = training_frame(paths.data)
    index = pl.DataFrame({"cell_id": classes.cell_ids, "ck_label": range(len(classes.cell_ids))})
    frame = frame.join(index, on="cell_id", how="inner").with_columns(pl.col("ck_label").alias("label"))
    transform = eval_transform(meta["preprocessing"])
    side = int(meta["preprocessing"]["input_size"][-1])
    out = []
    for split in splits:
        ds = PhotoDataset(frame.filter(pl.col("split") == split), paths.data.root, transform, decode_side=side)
        loader = make_loader(ds, cfg.train.batch_size * 2, False, cfg.data.num_workers)
        out.append(collect_outputs(model, loader, torch.device(device)))
    return out


def finish_evaluation(cfg, paths, run, classes: Classes, val: Outputs, test: Outputs, device: str,
                      fit_seconds: float | None, train: Outputs | None = None, judged: dict | None = None) -> dict:
    """Calibrate, pick the position mode and retrieval on val, fit the radius, measure test, write every artifact, maybe promote."""
    from geolocate.artifacts.best import is_current_best, maybe_promote
    from geolocate.evaluate.baseline_data import photo_baselines
    from geolocate.evaluate.baselines import collapse_warning
    from geolocate.evaluate.calibration import calibration_summary, fit_temperature
    from geolocate.evaluate.gates import all_pass, evaluate_gates, gates_for_area
    from geolocate.evaluate.report import gate_basis

    e = cfg.eval
    temperature = fit_temperature(val.logits, val.labels) if e.calibrate else 1.0
    val_probs, test_probs = softmax(val.logits, temperature), softmax(test.logits, temperature)
    mode, medians = _position_mode(e, val_probs, val, classes)
    val_scored = _score(val, val_probs, classes, mode, e.weighted_topk)
    scored = _score(test, test_probs, classes, mode, e.weighted_topk)
    retrieval, val_scored, scored = apply_retrieval(run.best, train, (val, val_probs, val_scored), (test, test_probs, scored))
    val_metrics, test_metrics = val_scored.metrics, scored.metrics
    radius, radius_coverage = _radius(e, val_probs, val_scored, test_probs, scored)
    stability = _stability(run, e.stability_last_k)
    baselines = photo_baselines(cfg, paths, classes.cell_ids, classes.centroids, test)
    collapse = collapse_warning(val_probs.argmax(1), val.labels)
    provenance = _provenance(paths)
    area_gates, gates_why = gates_for_area(e.gates, provenance["sources"])
    gates = evaluate_gates(test_metrics, stability["std_km"], area_gates, baselines, stability["mean_km"])
    calibration = calibration_summary(test.logits, test.labels, temperature, e.ece_bins)
    _write_predictions(run.predictions, test, test_probs, scored, classes)
    _write_plots(run, test, test_probs, scored, classes)
    extra = {"radius": radius, "retrieval": public_record(retrieval), "provenance": provenance}
    _update_sidecar(run.best, temperature, mode, e.weighted_topk, val_metrics, test_metrics, extra)
    became_best = maybe_promote(run.best, val_metrics, paths)
    already_best = not became_best and is_current_best(run.run_id, paths)
    summary = {
        "run_id": run.run_id, "metrics": {"val": val_metrics, "test": test_metrics},
        "baselines": baselines, "collapse": collapse, "gates": [g.as_dict() for g in gates], "gates_pass": all_pass(gates),
        "gate_basis": gate_basis(area_gates, gates_why),
        "gates_absolute": area_gates.absolute, "calibration": calibration,
        "stability": stability, "position": {"mode": mode, "medians": medians}, "became_best": became_best,
        "retrieval": retrieval, "radius": {**radius, "test": radius_coverage},
        "already_best": already_best, "report_path": str(run.report), "judged_with": judged,
    }
    summary.update(_head_selection(run))
    atomic.write_json(run.metrics_json, summary)
    _write_report(cfg, paths, run, summary, device, fit_seconds, test, classes, scored, test_probs)
    return summary


def _head_selection(run) -> dict:
    """`{"head_selection": rows}` when training chose a head on val (train/heads.py), else nothing."""
    import json

    if not run.head_selection.is_file():
        return {}
    rows = json.loads(run.head_selection.read_text()).get("rows") or []
    return {"head_selection": rows} if rows else {}


def _position_mode(e, val_probs, val: Outputs, classes: Classes):
    if e.position != "auto":
        return e.position, {}
    return choose_position_mode(val_probs, np.stack([val.lat, val.lon], 1), classes.centroids, e.weighted_topk)


def _score(out: Outputs, probs, classes: Classes, mode: str, k: int) -> ScoredSplit:
    return score_split(probs, out.labels, np.stack([out.lat, out.lon], 1), classes.centroids, mode, k)


def _radius(e, val_probs, val_scored: ScoredSplit, test_probs, scored: ScoredSplit) -> tuple[dict, dict]:
    """The conformal radius table fitted on val's final errors, and its coverage measured on test."""
    from geolocate.evaluate.conformal import coverage, fit_radius

    table = fit_radius(val_probs.max(1), val_scored.err_km, e.radius_level, e.radius_bands)
    return table, coverage(test_probs.max(1), scored.err_km, table)


def _provenance(paths: ProjectPaths) -> dict:
    """Where the training photos came from (manifest `source`), so predict can say so."""
    from geolocate.manifest import read_manifest

    manifest = read_manifest(paths.data, required=False)
    sources = [] if manifest is None or "source" not in manifest.columns else manifest["source"].drop_nulls().unique().sort().to_list()
    return {"sources": sources}


def _stability(run, last_k: int) -> dict:
    from geolocate.artifacts.rundir import read_metrics_rows

    medians = [float(r["val_median_km"]) for r in read_metrics_rows(run.metrics_csv) if r.get("val_median_km")]
    return {"std_km": stability_std_km(medians, last_k), "mean_km": stability_mean_km(medians, last_k), "last_k": last_k,
            "val_median_km": medians}


def _write_predictions(path: Path, out: Outputs, probs, scored: ScoredSplit, classes: Classes, k: int = 5) -> None:
    order = np.argsort(-probs, axis=1)[:, :k]
    pos, err = scored.pred_latlon, scored.err_km
    df = pl.DataFrame({
        "image_id": out.image_ids,
        "true_lat": out.lat, "true_lon": out.lon,
        "true_cell": [classes.cell_ids[i] for i in out.labels],
        "top_cells": [[classes.cell_ids[j] for j in row] for row in order],
        "top_probs": np.take_along_axis(probs, order, 1).tolist(),
        "pred_lat": pos[:, 0], "pred_lon": pos[:, 1],
        "error_km": err,
    })
    atomic.write_parquet(path, df)


def _write_plots(run, out: Outputs, probs, scored: ScoredSplit, classes: Classes) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from geolocate.cells.classes import cell_label
    from geolocate.evaluate.plots import confusion_matrix_figure, error_map_figure, geo_error_figure

    err = scored.err_km
    figures = {
        run.confusion_matrix: confusion_matrix_figure(out.labels, probs.argmax(1), classes.cities,
                                                      [cell_label(c, i) for c, i in zip(classes.cities, classes.cell_ids)]),
        run.geo_error: geo_error_figure(err),
        run.error_map: error_map_figure([classes.cell_ids[i] for i in out.labels], err, classes.centroids[out.labels]),
    }
    for path, fig in figures.items():
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)


def _update_sidecar(stem, temperature: float, mode: str, k: int, val: dict, test: dict, extra: dict) -> None:
    from geolocate.artifacts.checkpoint import update_sidecar

    def apply(sidecar: dict) -> None:
        sidecar.update(temperature=temperature, position=mode, weighted_topk=k, **extra)
        sidecar["metrics"] = {**sidecar.get("metrics", {}), "val": val, "test": test}

    update_sidecar(stem, apply)


def _write_report(cfg, paths, run, summary: dict, device: str, fit_seconds, test: Outputs, classes: Classes,
                  scored: ScoredSplit, test_probs) -> None:
    from geolocate.evaluate.breakdown import per_city, sample_predictions
    from geolocate.evaluate.judge import judged_line
    from geolocate.evaluate.report import collect_environment, render_report

    true_cities = [classes.cities[i] for i in test.labels]
    guesses = test_probs.argmax(1)
    text = render_report(
        run.run_id, summary["metrics"], summary["gates"], public_dict(cfg), collect_environment(device),
        calibration=summary["calibration"], stability=summary["stability"], data_kpis=_data_kpis(paths, classes),
        position=summary["position"], duration_s=fit_seconds, became_best=summary["became_best"],
        retrieval=summary["retrieval"], radius=summary["radius"],
        judged=judged_line(summary["judged_with"], summary.get("gates_absolute")) if summary.get("judged_with") else None,
        already_best=summary["already_best"],
        per_city=per_city(true_cities, guesses == test.labels, scored.err_km),
        samples=sample_predictions(test.image_ids, np.stack([test.lat, test.lon], 1), scored.pred_latlon, scored.err_km,
                                   true_cities, [classes.cities[i] for i in guesses]),
        baselines=summary["baselines"], gate_basis=summary["gate_basis"], warnings=[summary["collapse"]],
        head_selection=summary.get("head_selection"),
    )
    atomic.write_text(run.report, text)


def _data_kpis(paths: ProjectPaths, classes: Classes) -> dict:
    kpis: dict = {"classes": len(classes.cell_ids)}
    if paths.data.split.exists():
        counts = pl.read_parquet(paths.data.split)["split"].value_counts()
        kpis.update({f"{r['split']} photos": r["count"] for r in counts.iter_rows(named=True)})
    if paths.data.kpi_history.exists():
        last = pl.read_parquet(paths.data.kpi_history).tail(1).to_dicts()
        kpis.update({k: v for k, v in (last[0] if last else {}).items() if k != "timestamp"})
    return kpis
