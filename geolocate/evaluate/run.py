"""`geolocate evaluate`: a run's best checkpoint on val and test, in km, with every artifact.

Test-time views (`eval.tta`), temperature and position mode are chosen and fitted on val only,
then applied to test, so the test figures are honest. The fitted values go into the checkpoint's
sidecar, where `predict` reads them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from geolocate import atomic
from geolocate.config import GeolocateConfig
from geolocate.evaluate.collect import Outputs
from geolocate.evaluate.tta import Seen
from geolocate.evaluate.finish import Classes, Measured, Split, finish_evaluation
from geolocate.evaluate.metrics import softmax
from geolocate.evaluate.position import ScoredSplit, choose_position, score_split
from geolocate.evaluate.refine import apply_retrieval, public_record
from geolocate.paths import ProjectPaths


def evaluate_session(s, run, fit_seconds: float | None = None) -> dict:
    """Evaluate the run `s` just trained (its data loaders are already built)."""
    from geolocate.artifacts.checkpoint import read_checkpoint, read_sidecar

    s.net.load_state_dict(read_checkpoint(run.best)[1])
    meta = read_sidecar(run.best)
    val, test = _seen_splits(s.net, (s.val_loader, s.test_loader), s.dist.device, s.cfg.eval.tta, meta["preprocessing"], s.amp_dtype)
    classes = Classes.from_sidecar(meta)
    train = _train_outputs(s.cfg, s.paths, s.net, meta, classes, s.dist.device) if s.cfg.eval.retrieval else None
    from geolocate.evaluate.judge import judged_record

    return finish_v1(s.cfg, s.paths, run, classes, val, test, str(s.dist.device), fit_seconds, train,
                     judged_record(s.cfg, run))


def run_evaluate(cfg: GeolocateConfig, paths: ProjectPaths, run_ref: str) -> dict:
    """Evaluate a finished run from disk: its best checkpoint on today's val and test photos.

    `cfg` judges it (`judge.judging_config` picks the run's own unless the user asked for
    another); metrics.json and REPORT.md record whose it was.
    """
    import torch

    from geolocate.artifacts.checkpoint import load_checkpoint
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.cells import load_classes
    from geolocate.artifacts.consistency import check_same_data
    from geolocate.evaluate.judge import judged_record

    run = resolve_run(run_ref, paths)
    atomic.sweep_temps(run.root)  # what a killed evaluate or train left in the run
    model, meta = load_checkpoint(run.best, paths)
    classes = Classes.from_sidecar(meta)
    check_same_data(meta, paths.data, load_classes(paths.data)["cell_id"].to_list(), f"evaluate run {run.run_id}")
    val, test = _seen_splits(model, _loaders_from_disk(cfg, paths, meta, classes, ("val", "test")), torch.device("cpu"),
                             cfg.eval.tta, meta["preprocessing"])
    train = _train_outputs(cfg, paths, model, meta, classes, "cpu") if cfg.eval.retrieval else None
    return finish_v1(cfg, paths, run, classes, val, test, "cpu", None, train, judged_record(cfg, run))


def _seen_splits(model, loaders, device, tta: str, preprocessing: dict, amp_dtype=None) -> tuple[Seen, Seen]:
    """Val's and test's outputs (`tta.collect_seen`); val held out of a vote head's index, which it
    joined once it had chosen (`models.held_out`), so every choice made on val stays out-of-sample."""
    from geolocate.evaluate.tta import collect_seen
    from geolocate.models.held_out import held_out

    val_loader, test_loader = loaders
    with held_out(model):
        val = collect_seen(model, val_loader, device, tta, preprocessing, amp_dtype)
    return val, collect_seen(model, test_loader, device, tta, preprocessing, amp_dtype)


def _train_outputs(cfg, paths, model, meta, classes: Classes, device) -> Outputs | None:
    """Train photos under the eval transform (what the retrieval index holds); None for a model without embeddings."""
    import torch

    from geolocate.evaluate.collect import collect_outputs

    if not hasattr(model, "forward_with_features"):
        return None
    return collect_outputs(model, _loaders_from_disk(cfg, paths, meta, classes, ("train",))[0], torch.device(device))


def _loaders_from_disk(cfg, paths, meta, classes: Classes, splits) -> list:
    """A loader of each split's photos under the checkpoint's eval transform (labels as its classes)."""
    from geolocate.data.dataset import PhotoDataset
    from geolocate.data.frames import training_frame
    from geolocate.data.loaders import make_loader
    from geolocate.data.transforms import eval_transform

    frame = training_frame(paths.data)
    index = pl.DataFrame({"cell_id": classes.cell_ids, "ck_label": range(len(classes.cell_ids))})
    frame = frame.join(index, on="cell_id", how="inner").with_columns(pl.col("ck_label").alias("label"))
    transform = eval_transform(meta["preprocessing"])
    side = int(meta["preprocessing"]["input_size"][-1])
    out = []
    for split in splits:
        ds = PhotoDataset(frame.filter(pl.col("split") == split), paths.data.root, transform, decode_side=side)
        out.append(make_loader(ds, cfg.train.batch_size * 2, False, cfg.data.num_workers))
    return out


def finish_v1(cfg, paths, run, classes: Classes, val: Seen, test: Seen, device: str,
              fit_seconds: float | None, train: Outputs | None = None, judged: dict | None = None) -> dict:
    """France v1's own part (test-time views, temperature, position mode and retrieval chosen on val), then the shared finish."""
    from geolocate.artifacts.best import checkpoint_default
    from geolocate.evaluate.baseline_data import photo_baselines, photo_val_bar, photo_vectors
    from geolocate.evaluate.baselines import bar_scores
    from geolocate.evaluate.tta import choose_seen

    e = cfg.eval
    # One pass of the frozen backbone serves the val bar and the test baselines.
    vectors = photo_vectors(cfg, paths, classes.cell_ids, [*val.truth.image_ids, *test.truth.image_ids])
    bar = photo_val_bar(paths, classes.cell_ids, classes.centroids, val.truth.image_ids, _truth(val.truth), vectors)
    fits: dict[int, _ValFit] = {}  # per val side (by identity): the side val keeps is not fitted twice

    def fitted(side: Outputs) -> _ValFit:
        if id(side) not in fits:
            fits[id(side)] = _fit_on_val(e, side, classes, bar)
        return fits[id(side)]

    val, test, tta = choose_seen(e.tta, val, test, lambda side: bar_scores(fitted(side).scored.err_km, bar))
    temperature, val_probs, mode, k, scores, val_scored = fitted(val)
    test_probs = softmax(test.logits, temperature)
    scored = _score(test, test_probs, classes, mode, k)
    retrieval, val_scored, scored = apply_retrieval(run.best, train, (val, val_probs, val_scored), (test, test_probs, scored), bar)
    _update_sidecar(run.best, temperature, mode, k, val_scored.metrics, scored.metrics, public_record(retrieval),
                    extra={"tta": tta})
    heads = _head_rows(run)
    history, no_history = _val_history(run, heads)
    measured = Measured(
        "v1", run, classes, _split(val, val_probs, val_scored), _split(test, test_probs, scored),
        photo_baselines(paths, classes.cell_ids, classes.centroids, test, vectors), history,
        checkpoint_default(run.best, paths), lambda extra: _update_sidecar(run.best, extra=extra), temperature,
        position={"mode": mode, "k": k, "scores": scores}, extra={"retrieval": retrieval, "tta": tta, **({"head_selection": heads} if heads else {})},
        data={"classes": len(classes.cell_ids), **_kpis(paths)}, chosen_head=_chosen_head(heads), no_history=no_history)
    return finish_evaluation(cfg, paths, measured, device, fit_seconds, judged)


class _ValFit(NamedTuple):
    """What val fits for the classifier's positions: the temperature, then the position mode on the calibrated probabilities."""

    temperature: float
    probs: np.ndarray
    mode: str
    k: int  # the classes `mode` reads
    scores: dict  # every candidate's val figures when val chose the position
    scored: ScoredSplit  # val placed by `mode`


def _fit_on_val(e, val: Outputs, classes: Classes, bar: tuple[float, float]) -> _ValFit:
    from geolocate.evaluate.calibration import fit_temperature

    temperature = fit_temperature(val.logits, val.labels) if e.calibrate and len(val.labels) else 1.0
    probs = softmax(val.logits, temperature)
    mode, k, scores = _position_mode(e, probs, val, classes, bar)
    return _ValFit(temperature, probs, mode, k, scores, _score(val, probs, classes, mode, k))


def _truth(out: Outputs) -> np.ndarray:
    return np.stack([out.lat, out.lon], 1)


def _split(out: Outputs, probs: np.ndarray, scored: ScoredSplit) -> Split:
    return Split(probs, out.logits, out.labels, _truth(out), list(out.image_ids), scored)


def _head_rows(run) -> list[dict]:
    """The candidates' val rows when training chose a head on val (train/heads.py), else none."""
    import json

    if not run.head_selection.is_file():
        return []
    return json.loads(run.head_selection.read_text()).get("rows") or []


def _chosen_head(rows: list[dict]) -> str | None:
    """The head val chose among several candidates (None when there was no choice)."""
    return next((r["head"] for r in rows if r.get("chosen")), None) if len(rows) > 1 else None


def _position_mode(e, val_probs, val: Outputs, classes: Classes, bar: tuple[float, float]) -> tuple[str, int, dict]:
    """(mode, classes it reads, every candidate's val figures): `eval.position`, or with `auto` val's choice."""
    if e.position != "auto":
        return e.position, e.weighted_topk, {}
    chosen = choose_position(val_probs, _truth(val), classes.centroids, e.weighted_topk, bar)
    return chosen.mode, chosen.k, chosen.scores


def _score(out: Outputs, probs, classes: Classes, mode: str, k: int) -> ScoredSplit:
    return score_split(probs, out.labels, _truth(out), classes.centroids, mode, k)


def _val_history(run, heads: list[dict]) -> tuple[list[float] | None, str]:
    """(val median km per epoch, for the stability gate; why there is none): None when val kept a
    k-NN vote head, whose metrics.csv rows are the settings it tried (the gate is N/A, as for a
    four-view index sniper)."""
    from geolocate.artifacts.rundir import read_metrics_rows
    from geolocate.models.votes import VOTE_HEADS

    chosen = next((row["head"] for row in heads if row.get("chosen") and row.get("head") in VOTE_HEADS), None)
    if chosen:
        return None, (f"val chose a k-NN vote head (`{chosen}`): its rows in metrics.csv are the neighbour counts "
                      "and mixes it tried, not epochs, so they say nothing of how steadily it trains.")
    return [float(r["val_median_km"]) for r in read_metrics_rows(run.metrics_csv) if r.get("val_median_km")], ""


def _update_sidecar(stem, temperature: float | None = None, mode: str | None = None, k: int | None = None,
                    val: dict | None = None, test: dict | None = None, retrieval: dict | None = None,
                    extra: dict | None = None) -> None:
    """What `predict` reads of the evaluation: temperature, position mode, retrieval, metrics, then radius and provenance."""
    from geolocate.artifacts.checkpoint import update_sidecar

    def apply(sidecar: dict) -> None:
        if mode is not None:
            sidecar.update(temperature=temperature, position=mode, weighted_topk=k, retrieval=retrieval)
            sidecar["metrics"] = {**sidecar.get("metrics", {}), "val": val, "test": test}
        sidecar.update(extra or {})

    update_sidecar(stem, apply)


def _kpis(paths: ProjectPaths) -> dict:
    if not paths.data.kpi_history.exists():
        return {}
    last = pl.read_parquet(paths.data.kpi_history).tail(1).to_dicts()
    # No batches (imported photos) is an empty string: a row without a value says nothing.
    return {k: v for k, v in (last[0] if last else {}).items() if k != "timestamp" and v not in (None, "")}
