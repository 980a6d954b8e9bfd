"""Whether, and how, retrieval refines positions: decided on val, measured on test.

A small grid (cells searched × neighbours voting) is scored on val; the best setting is kept
when it beats the classifier's own position on val by `median + p90` (the tail is why
refinement exists, the median is what users see first). Test is only measured, never used to
choose, so its figures stay honest.
"""

from __future__ import annotations

import numpy as np

from geolocate.evaluate.metrics import error_stats
from geolocate.evaluate.position import position_errors_km
from geolocate.evaluate.retrieval import RetrievalIndex, refine_positions

TOP_CELLS = (1, 3, 5, 10)
NEIGHBOURS = (5, 10, 20)
SIDE_BY_SIDE = ("median_km", "p90_km", "p95_km", "over_25km", "over_200km", "over_500km")


def _score(stats: dict) -> float:
    return stats["median_km"] + stats["p90_km"]


def choose_refinement(index: RetrievalIndex, probs: np.ndarray, embeddings: np.ndarray, true_latlon: np.ndarray,
                      base_err: np.ndarray) -> dict:
    """The best grid setting on val and whether it beats the classifier's position there."""
    base = error_stats(base_err)
    best = None
    for k in (k for k in TOP_CELLS if k <= probs.shape[1]):
        for n in NEIGHBOURS:
            err = position_errors_km(refine_positions(probs, embeddings, index, k, n), true_latlon)
            stats = error_stats(err)
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
