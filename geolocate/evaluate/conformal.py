"""A credible radius: "the true place is within r km with 90 % probability".

Split-conformal prediction on val: the nonconformity score of a photo is its error in km, so the
radius at level 1 − α is the ⌈(n + 1)(1 − α)⌉-th smallest val error. One radius for every photo
would be far too wide for confident ones and too tight for doubtful ones, so val is cut into
confidence bands (equal-count, by the top-1 probability) and each band gets its own radius
(Mondrian / group-conditional conformal): coverage holds within each band, hence overall, as
long as test photos are exchangeable with val photos. Test coverage is measured, not assumed.
"""

from __future__ import annotations

import math

import numpy as np


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal radius of `scores` at `level`: the ⌈(n+1)·level⌉-th smallest (inf if n is too small)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    rank = math.ceil((len(scores) + 1) * level)
    return float(scores[rank - 1]) if 0 < rank <= len(scores) else math.inf


def fit_radius(confidence: np.ndarray, err_km: np.ndarray, level: float = 0.9, bands: int = 3) -> dict:
    """Band edges (on confidence) and one conformal radius per band, fitted on val.

    Bands are equal-count; fewer are used when a band would hold under 20 photos (a radius from
    a handful of errors is mostly noise). Returns a JSON-ready dict `radius_for` reads.
    """
    confidence, err = np.asarray(confidence, dtype=np.float64), np.asarray(err_km, dtype=np.float64)
    bands = max(1, min(bands, len(err) // 20))
    edges = [float(e) for e in np.quantile(confidence, np.arange(1, bands) / bands)] if bands > 1 else []
    band = np.searchsorted(edges, confidence, side="right")
    radius = [conformal_quantile(err[band == b], level) for b in range(bands)]
    return {"level": level, "edges": edges, "radius_km": [None if math.isinf(r) else r for r in radius], "n_val": int(len(err))}


def radius_for(confidence: np.ndarray, table: dict) -> list[float | None]:
    """Each photo's credible radius in km (None: too few val photos in its band to promise one)."""
    band = np.searchsorted(table["edges"], np.asarray(confidence, dtype=np.float64), side="right")
    return [table["radius_km"][b] for b in band]


def coverage(confidence: np.ndarray, err_km: np.ndarray, table: dict) -> dict:
    """Share of photos whose true place lies within their radius, overall and per band (measured on test)."""
    radius = np.array([math.inf if r is None else r for r in radius_for(confidence, table)])
    inside = np.asarray(err_km, dtype=np.float64) <= radius
    band = np.searchsorted(table["edges"], np.asarray(confidence, dtype=np.float64), side="right")
    per_band = [float(inside[band == b].mean()) if (band == b).any() else None for b in range(len(table["radius_km"]))]
    return {"level": table["level"], "coverage": float(inside.mean()) if len(inside) else None, "per_band": per_band,
            "median_radius_km": float(np.median(radius)) if len(radius) else None}
