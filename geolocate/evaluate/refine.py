"""Whether, and how, retrieval refines positions: decided on val, measured on test.

A small grid (cells searched × neighbours voting) is scored on val; the best setting is kept
when it beats the classifier's own position on val by `median + p90` (the tail is why
refinement exists, the median is what users see first). Test is only measured, never used to
choose, so its figures stay honest.
"""

from __future__ import annotations

import numpy as np

from geolocate.evaluate.metrics import error_stats, geo_metrics
from geolocate.evaluate.position import ScoredSplit, position_errors_km
from geolocate.evaluate.retrieval import RetrievalIndex, build_index, refine_grid, refine_positions, save_index

TOP_CELLS = (1, 3, 5, 10)
NEIGHBOURS = (5, 10, 20)
SIDE_BY_SIDE = ("median_km", "p90_km", "p95_km", "over_25km", "over_200km", "over_500km")


def _score(stats: dict) -> float:
    return stats["median_km"] + stats["p90_km"]


def choose_refinement(index: RetrievalIndex, probs: np.ndarray, embeddings: np.ndarray, true_latlon: np.ndarray,
                      base_err: np.ndarray) -> dict:
    """The best grid setting on val and whether it beats the classifier's position there."""
    base = error_stats(base_err)
    settings = [(k, n) for k in TOP_CELLS if k <= probs.shape[1] for n in NEIGHBOURS]
    best = None
    for (k, n), pos in refine_grid(probs, embeddings, index, settings).items():
        stats = error_stats(position_errors_km(pos, true_latlon))
        if best is None or _score(stats) < _score(best["stats"]):
            best = {"top_cells": k, "neighbours": n, "stats": stats}
    enabled = _score(best["stats"]) < _score(base)
    return {"enabled": bool(enabled), "top_cells": best["top_cells"], "neighbours": best["neighbours"], "index_size": int(len(index.labels))}


def side_by_side(base_err: np.ndarray, refined_err: np.ndarray) -> dict:
    """{metric: {"classifier": x, "retrieval": y}} for the report's comparison table."""
    base, refined = _with_over_25(base_err), _with_over_25(refined_err)
    return {key: {"classifier": base[key], "retrieval": refined[key]} for key in SIDE_BY_SIDE}


def _with_over_25(err: np.ndarray) -> dict:
    stats = error_stats(err)
    return {**stats, "over_25km": float((np.asarray(err) > 25).mean())}


def apply_retrieval(best_stem, train, val_side: tuple, test_side: tuple) -> tuple[dict, ScoredSplit, ScoredSplit]:
    """Index train, let val decide whether retrieval refines, measure both positions on val and test.

    Args:
        best_stem: the run's best checkpoint (the index is written beside it when refinement is on).
        train: train `Outputs` with embeddings (None: retrieval off or a model without embeddings).
        val_side, test_side: (Outputs, calibrated probs, ScoredSplit by the classifier's position).

    Returns:
        (record for metrics.json, val and test ScoredSplit by the chosen position).
    """
    from geolocate.artifacts.digest import sha256_file
    from geolocate.artifacts.resolve import INDEX_SUFFIX, file_of

    (val, val_probs, val_scored), (test, test_probs, scored) = val_side, test_side
    if train is None or train.embeddings is None or val.embeddings is None or test.embeddings is None:
        return {"enabled": False, "reason": "no embeddings (retrieval off or model without them)"}, val_scored, scored
    index = build_index(train.embeddings, np.stack([train.lat, train.lon], 1), train.labels)
    record = choose_refinement(index, val_probs, val.embeddings, np.stack([val.lat, val.lon], 1), val_scored.err_km)
    refined = {}
    for name, out, probs, base in (("val", val, val_probs, val_scored), ("test", test, test_probs, scored)):
        pos = refine_positions(probs, out.embeddings, index, record["top_cells"], record["neighbours"])
        refined[name] = ScoredSplit(base.metrics, pos, position_errors_km(pos, np.stack([out.lat, out.lon], 1)))
        record[name] = side_by_side(base.err_km, refined[name].err_km)
    if not record["enabled"]:
        file_of(best_stem, INDEX_SUFFIX).unlink(missing_ok=True)  # an earlier evaluation's index is not used any more
        return record, val_scored, scored
    save_index(file_of(best_stem, INDEX_SUFFIX), index, _weights_id(best_stem))
    record["index_sha256"] = sha256_file(file_of(best_stem, INDEX_SUFFIX))  # predict refuses an index swapped beside the weights
    return record, _rescored(refined["val"], val_probs, val), _rescored(refined["test"], test_probs, test)


def _rescored(refined: ScoredSplit, probs, out) -> ScoredSplit:
    return ScoredSplit(geo_metrics(refined.err_km, probs, out.labels), refined.pred_latlon, refined.err_km)


def public_record(record: dict) -> dict:
    """What predict needs of the retrieval decision (the side-by-side figures stay in metrics.json)."""
    return {k: v for k, v in record.items() if k not in ("val", "test")}


def _weights_id(stem) -> str | None:
    from geolocate.artifacts.checkpoint import read_sidecar

    return read_sidecar(stem).get("weights_id")
