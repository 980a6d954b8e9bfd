"""The finish of evaluation, written once for both systems.

A system (France v1 in `evaluate/run.py`, the scout-sniper in `scout/evaluate.py`) measures its
run its own way and hands over a `Measured`: the final positions of val and test with the
probabilities behind them, its baselines, its val history, where its default model lives and
where its predictor reads the radius. Everything after that is here and nowhere else: area
gates (an imported area judged by its own baselines), calibration, the conformal radius, the
small-sample and collapse warnings, predictions.parquet and the plots (error map included), the
per-area table, promotion by `artifacts.best.promote`, metrics.json, and REPORT.md rendered from
metrics.json by `report.render_report`'s list of sections (never patched afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import polars as pl

from geolocate import atomic
from geolocate.evaluate.position import ScoredSplit


@dataclass
class Classes:
    """What evaluation needs of the classes: centroids, cell ids (or region names), their area names."""

    centroids: np.ndarray
    cell_ids: list[str]
    cities: list[str]

    @classmethod
    def from_sidecar(cls, meta: dict) -> "Classes":
        rows = meta["classes"]
        return cls(np.array([[c["centroid_lat"], c["centroid_lon"]] for c in rows]),
                   [c["cell_id"] for c in rows], [str(c.get("city")) for c in rows])


@dataclass
class Split:
    """One split as the finish reads it: final positions (`scored`) and the probabilities behind them."""

    probs: np.ndarray  # [N, C] the probabilities the predictor's confidence comes from
    logits: np.ndarray  # [N, C] before any temperature (calibration)
    labels: np.ndarray  # [N] true classes
    truth: np.ndarray  # [N, 2] true (lat, lon)
    ids: list[str]
    scored: ScoredSplit


@dataclass
class Measured:
    """What a system hands to `finish_evaluation`."""

    system: str
    run: Any  # RunDir
    classes: Classes
    val: Split
    test: Split
    baselines: dict
    val_history_km: list[float] | None  # val median km per epoch (stability); None: the model trained no epochs
    default: Any  # artifacts.best.DefaultModel
    store: Callable[[dict], None]  # records radius and provenance where the system's predictor reads them
    temperature: float | None = None  # the temperature its predictor applies (None: it applies none)
    position: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # system-specific metrics.json keys (phases, retrieval, heads…)
    data: dict = field(default_factory=dict)  # the Data section
    chosen_head: str | None = None  # the head val chose, when it chose one (the collapse advice)
    area: str = "city"  # what a class's `cities` name
    artifacts: tuple[str, ...] = ()
    no_history: str = ""  # with `val_history_km` None: why the model has no epochs to judge (REPORT.md says it)


def finish_evaluation(cfg, paths, m: Measured, device: str = "cpu", seconds: float | None = None,
                      judged: dict | None = None) -> dict:
    """Gates, calibration, radius, warnings, artifacts, promotion, metrics.json and REPORT.md; the summary."""
    from geolocate.artifacts.best import promote
    from geolocate.evaluate.baselines import collapse_warning
    from geolocate.evaluate.gates import all_pass, evaluate_gates, gates_for_area
    from geolocate.evaluate.report import small_sample_warning
    from geolocate.evaluate.tables import ARTIFACTS, gate_basis

    e = cfg.eval
    small = small_sample_warning(len(m.val.labels), len(m.test.labels))
    collapse = collapse_warning(m.val.probs.argmax(1), m.val.labels, m.chosen_head)
    provenance = {"sources": manifest_sources(paths)}
    area_gates, why = gates_for_area(e.gates, provenance["sources"])
    stability = {**stability_record(m.val_history_km or [], e.stability_last_k), "trained_epochs": m.val_history_km is not None}
    if m.val_history_km is None:
        stability["not_measured"] = m.no_history
    gates = evaluate_gates(m.test.scored.metrics, stability["std_km"], area_gates, m.baselines, stability["mean_km"],
                           trained_epochs=m.val_history_km is not None)
    radius = _radius(e, m.val, m.test)
    m.store({"radius": {k: v for k, v in radius.items() if k != "test"}, "provenance": provenance})
    _write_predictions(m.run.predictions, m.test, m.classes)
    _write_plots(m.run, m.test, m.classes)
    promotion = promote(m.default, m.val.scored.metrics, all_pass(gates), paths)
    summary = {
        "run_id": m.run.run_id, "system": m.system,
        "metrics": {"test": m.test.scored.metrics, "val": m.val.scored.metrics},
        "baselines": m.baselines, "collapse": collapse, "small_sample": small,
        "gates": [g.as_dict() for g in gates], "gates_pass": all_pass(gates), "gate_basis": gate_basis(area_gates, why),
        "gates_absolute": area_gates.absolute, "calibration": _calibration(e, m), "stability": stability,
        "position": m.position, "radius": radius, "provenance": provenance,
        "became_best": promotion.promoted, "promotion": {"promoted": promotion.promoted, "why": promotion.why},
        "already_best": not promotion.promoted and m.default.holder() == m.run.run_id,
        "report_path": str(m.run.report), "judged_with": judged, **m.extra,
        **_closer_looks(m), "data": {**m.data, **stage_counts(paths)},
        "duration_s": seconds, "environment": _environment(device), "config": _public_config(cfg),
        "artifacts": list(m.artifacts or ARTIFACTS),
    }
    summary["warnings"] = [small, collapse]
    write_summary(m.run, summary)
    return summary


def write_summary(run, summary: dict) -> None:
    """metrics.json, then REPORT.md rendered from it: the report is a pure function of metrics.json."""
    from geolocate.evaluate.judge import judged_line
    from geolocate.evaluate.report import render_report

    atomic.write_json(run.metrics_json, summary)
    judged = summary.get("judged_with")
    line = judged_line(judged, summary.get("gates_absolute")) if judged else None
    atomic.write_text(run.report, render_report({**summary, "judged_line": line}))


def add_to_summary(run, **fields) -> dict:
    """Add `fields` to a run's metrics.json (e.g. `seeds` after a `--seeds N` training) and render REPORT.md again."""
    summary = {**(run.read_metrics() or {}), **fields}
    write_summary(run, summary)
    return summary


def _public_config(cfg) -> dict:
    from geolocate.config import public_dict

    return public_dict(cfg)


def _environment(device: str) -> dict:
    from geolocate.evaluate.report import collect_environment

    return collect_environment(device)


def _calibration(e, m: Measured) -> dict | None:
    """ECE and NLL on test before and after the temperature the predictor applies (T = 1 when it applies none)."""
    from geolocate.evaluate.calibration import calibration_summary

    if not len(m.test.labels):
        return None
    summary = calibration_summary(m.test.logits, m.test.labels, m.temperature or 1.0, e.ece_bins)
    return {**summary, "applied": m.temperature is not None}


def _radius(e, val: Split, test: Split) -> dict:
    """The conformal radius table fitted on val's final errors (whichever position mode was chosen), and its test coverage."""
    from geolocate.evaluate.conformal import coverage, fit_radius

    table = fit_radius(val.probs.max(1), val.scored.err_km, e.radius_level, e.radius_bands)
    return {**table, "test": coverage(test.probs.max(1), test.scored.err_km, table)}


def stability_record(val_median_km: list[float], last_k: int) -> dict:
    """Std and mean of val median km over the last `last_k` epochs, with the values."""
    from geolocate.evaluate.metrics import stability_mean_km, stability_std_km

    return {"std_km": stability_std_km(val_median_km, last_k), "mean_km": stability_mean_km(val_median_km, last_k),
            "last_k": last_k, "val_median_km": list(val_median_km)}


def manifest_sources(paths) -> list[str]:
    """Where the photos came from (manifest `source`): the area gates and predict's provenance read it."""
    from geolocate.manifest import read_manifest

    manifest = read_manifest(paths.data, required=False)
    return [] if manifest is None or "source" not in manifest.columns else manifest["source"].drop_nulls().unique().sort().to_list()


def stage_counts(paths) -> dict[str, Any]:
    """How many photos (or locations) each stage kept, read from the data files themselves."""
    data, counts = paths.data, {}
    if data.manifest.exists():
        manifest = pl.read_parquet(data.manifest)
        counts["photos in the manifest"] = manifest.height
        if "parent_id" in manifest.columns and manifest["parent_id"].drop_nulls().len():
            views = manifest["parent_id"].drop_nulls()
            counts["360° captures cut into views"] = f"{views.n_unique():,} → {views.len():,} views (the captures are not trained on)"
    for name, path in (("photos with a class (labels)", data.labels), ("four-view locations", data.locations)):
        if path.exists():
            counts[name] = pl.read_parquet(path).height
    for name, path in (("photos in the split", data.split), ("locations in the split", data.location_split)):
        if path.exists():
            split = pl.read_parquet(path, columns=["split"])["split"].value_counts().sort("split")
            counts[name] = " / ".join(f"{r['split']} {r['count']:,}" for r in split.iter_rows(named=True))
    from geolocate.split.run import left_out as photos_left_out
    from geolocate.split.run import locations_left_out

    for name, split, report, left_out in (("labelled photos left out of the split", data.split, data.split_report, photos_left_out),
                                          ("locations left out of the split", data.location_split, data.location_split_report,
                                           locations_left_out)):
        if split.exists() and report.exists():
            counts.update(_left_out_of_split(name, report, left_out))
    return counts


def _left_out_of_split(name: str, report_path, left_out) -> dict[str, str]:
    """{name: the reasons}, from the split's own report (none left out: nothing)."""
    import json

    try:
        said = left_out(json.loads(report_path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError):  # a report from an older split, or edited: the counts above still stand
        return {}
    return {name: "; ".join(said)} if said else {}


def _closer_looks(m: Measured) -> dict:
    """The per-area table and the sample strip of test (the report's closer looks)."""
    from geolocate.evaluate.breakdown import areas_of, per_area, sample_predictions

    test = m.test
    if not len(test.labels):
        return {}
    true_names = [m.classes.cities[i] for i in test.labels]
    guesses = test.probs.argmax(1)
    names, by = areas_of(true_names, test.truth, m.classes.cell_ids, m.area)
    return {"per_area": per_area(names, guesses == test.labels, test.scored.err_km), "per_area_by": by,
            "samples": sample_predictions(test.ids, test.truth, test.scored.pred_latlon, test.scored.err_km,
                                          true_names, [m.classes.cities[i] for i in guesses])}


def _write_predictions(path, test: Split, classes: Classes, k: int = 5) -> None:
    """One row per test example: truth, top-k classes with their probabilities, predicted position, error."""
    order = np.argsort(-test.probs, axis=1)[:, :k]
    pos = test.scored.pred_latlon
    atomic.write_parquet(path, pl.DataFrame({
        "image_id": test.ids, "true_lat": test.truth[:, 0], "true_lon": test.truth[:, 1],
        "true_cell": [classes.cell_ids[i] for i in test.labels],
        "top_cells": [[classes.cell_ids[j] for j in row] for row in order],
        "top_probs": np.take_along_axis(test.probs, order, 1).tolist(),
        "pred_lat": pos[:, 0], "pred_lon": pos[:, 1], "error_km": test.scored.err_km,
    }))


def _write_plots(run, test: Split, classes: Classes) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from geolocate.cells.classes import cell_label
    from geolocate.evaluate.plots import confusion_matrix_figure, error_map_figure, geo_error_figure

    if not len(test.labels):
        return
    err = test.scored.err_km
    labels = [c if c == i else cell_label(c, i) for c, i in zip(classes.cities, classes.cell_ids)]  # a region is its own name
    figures = {
        run.confusion_matrix: confusion_matrix_figure(test.labels, test.probs.argmax(1), classes.cities, labels),
        run.geo_error: geo_error_figure(err),
        run.error_map: error_map_figure([classes.cell_ids[i] for i in test.labels], err, classes.centroids[test.labels]),
    }
    for path, fig in figures.items():
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
