"""Predicted positions from class probabilities: three modes, one chosen on val.

- `top1`: the top-1 cell's centroid.
- `weighted`: the probability-weighted mean of the top-k centroids on the sphere (unit vectors
  averaged then projected back, not raw lat/lon, which breaks across the antimeridian).
- `median`: the point minimising the *expected great-circle distance* to the top-k centroids
  under the probabilities: their spherical geometric median (Weiszfeld on the sphere). When the
  probability is split between two continents, the mean lands in the ocean between them and
  top-1 is a gamble; the median stays on the heavier side and only moves towards the others
  as far as that lowers the expected error.

Probabilities are renormalised over the top-k. Everything here is numpy only, so the
predictors (ONNX path included) place photos with exactly the code evaluation measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from geolocate.evaluate.baselines import bar_scores
from geolocate.evaluate.metrics import geo_metrics, position_errors_km, topk_indices
from geolocate.geo import spherical_mean

PositionMode = Literal["top1", "weighted", "median"]
POSITION_MODES: tuple[PositionMode, ...] = ("top1", "weighted", "median")  # a tie on val keeps the earlier (simpler)
_WEISZFELD_STEPS = 60
_STARTS = 16  # start candidates among the heaviest points: the cost of trying each grows with k²


def top1_positions(probs: np.ndarray, centroids_latlon: np.ndarray) -> np.ndarray:
    """[N, 2] (lat, lon) of each row's argmax cell centroid."""
    centroids = np.asarray(centroids_latlon, dtype=np.float64)
    return centroids[np.argmax(np.asarray(probs), axis=1)]


def weighted_positions(probs: np.ndarray, centroids_latlon: np.ndarray, k: int = 5) -> np.ndarray:
    """[N, 2] probability-weighted mean position of each row's top-`k` cells (on the sphere)."""
    probs = np.asarray(probs, dtype=np.float64)
    top = topk_indices(probs, k)
    weights = np.take_along_axis(probs, top, axis=1)
    members = np.asarray(centroids_latlon, dtype=np.float64)[top]  # [N, k, 2]
    return np.stack(spherical_mean(members[..., 0], members[..., 1], weights), axis=1)


def _unit(lat, lon) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _latlon(xyz: np.ndarray) -> np.ndarray:
    return np.stack([np.degrees(np.arctan2(xyz[..., 2], np.hypot(xyz[..., 0], xyz[..., 1]))),
                     np.degrees(np.arctan2(xyz[..., 1], xyz[..., 0]))], axis=-1)


def _expected_angle(x: np.ndarray, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[N] Σ w·angle(x, p) for x [N, 3] against points [N, k, 3] with weights [N, k] (summing to 1)."""
    return (weights * np.arccos(np.clip(np.einsum("nd,nkd->nk", x, points), -1.0, 1.0))).sum(axis=1)


def spherical_geometric_median(points: np.ndarray, weights: np.ndarray, steps: int = _WEISZFELD_STEPS) -> np.ndarray:
    """[N, 3] unit vectors minimising the weighted sum of great-circle angles to `points` [N, k, 3].

    Started from the best of the first `_STARTS` points (the heaviest, as the callers order them)
    and their weighted mean (the objective is not convex on the sphere, so the start matters), then
    Weiszfeld steps in the tangent plane: each point pulls along the geodesic with weight w / angle.
    The best of the start and the end is kept, so the result is never worse than any of those
    starts.
    """
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
    mean = (weights[..., None] * points).sum(axis=1)
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    starts = np.concatenate([points[:, :_STARTS], mean[:, None]], axis=1)  # [N, ≤ _STARTS + 1, 3]
    cost = np.stack([_expected_angle(starts[:, j], points, weights) for j in range(starts.shape[1])], axis=1)
    x = start = starts[np.arange(len(points)), cost.argmin(axis=1)]
    for _ in range(steps):
        x = _weiszfeld_step(x, points, weights)
    better = _expected_angle(x, points, weights) < _expected_angle(start, points, weights)
    return np.where(better[:, None], x, start)


def _weiszfeld_step(x: np.ndarray, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    cos = np.clip(np.einsum("nd,nkd->nk", x, points), -1.0, 1.0)
    angle = np.arccos(cos)
    tangent = points - cos[..., None] * x[:, None]  # the direction of each point, in x's tangent plane
    norm = np.linalg.norm(tangent, axis=-1)
    pull = weights / np.maximum(angle, 1e-9)  # Weiszfeld: weight over distance (a point on x pulls with none)
    pull = np.where(angle < 1e-9, 0.0, pull)
    step = (pull[..., None] * tangent * (angle / np.maximum(norm, 1e-12))[..., None]).sum(axis=1)
    step /= np.maximum(pull.sum(axis=1, keepdims=True), 1e-12)
    length = np.linalg.norm(step, axis=1, keepdims=True)  # the exponential map: walk that far along the geodesic
    direction = step / np.maximum(length, 1e-12)
    moved = np.cos(length) * x + np.sin(length) * direction
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def geometric_median_latlon(latlon: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[N, 2] spherical geometric median of each row's points `latlon` [N, k, 2] under `weights` [N, k]
    (the heaviest first: the search starts among them)."""
    if not len(latlon):
        return np.zeros((0, 2))
    order = np.argsort(-weights, axis=1, kind="stable")
    latlon, weights = np.take_along_axis(latlon, order[..., None], axis=1), np.take_along_axis(weights, order, axis=1)
    return _latlon(spherical_geometric_median(_unit(latlon[..., 0], latlon[..., 1]), weights))


def median_positions(probs: np.ndarray, centroids_latlon: np.ndarray, k: int = 5) -> np.ndarray:
    """[N, 2] spherical geometric median of each row's top-`k` cell centroids, weighted by probability."""
    probs = np.asarray(probs, dtype=np.float64)
    top = topk_indices(probs, k)
    weights = np.take_along_axis(probs, top, axis=1)
    members = np.asarray(centroids_latlon, dtype=np.float64)[top]  # [N, k, 2]
    return geometric_median_latlon(members, weights)


def _positions(probs: np.ndarray, centroids_latlon: np.ndarray, mode: PositionMode, k: int) -> np.ndarray:
    """[N, 2] predicted (lat, lon) by `mode`."""
    if mode == "top1":
        return top1_positions(probs, centroids_latlon)
    if mode == "weighted":
        return weighted_positions(probs, centroids_latlon, k)
    if mode == "median":
        return median_positions(probs, centroids_latlon, k)
    raise ValueError(f"position mode must be one of {POSITION_MODES}, not {mode!r}")


def predicted_positions(
    probs: np.ndarray, centroids_latlon: np.ndarray, mode: PositionMode, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted latitudes and longitudes ([N] each) by `mode`: "top1", or "weighted" / "median" over the top-`k`.

    The one function the predictors call (pure numpy, no torch): the mode name is the sidecar's
    (or the bundle's) `position`.
    """
    pos = _positions(probs, centroids_latlon, mode, k)
    return pos[:, 0], pos[:, 1]


WIDE_TOPK = 256  # the "every class" median: classes past the 256 likeliest carry no weight worth the work


@dataclass(frozen=True)
class PositionChoice:
    """The position val chose: a mode, the classes it reads (`k`), and every candidate's val figures."""

    mode: PositionMode
    k: int
    scores: dict[str, dict[str, float]]


def position_candidates(n_classes: int, k: int) -> list[tuple[str, PositionMode, int]]:
    """(name, mode, k) of every position val compares, simplest first.

    Beside the top-`k` modes, the geometric median over every class (up to `WIDE_TOPK`): with
    calibrated probabilities it is the point of least expected distance under the whole answer, so
    an unsure photo is placed near the middle of where such photos are (the tail, p90) while a sure
    one stays on its cell. The top-`k` median ignores the rest of the mass.
    """
    found: list[tuple[str, PositionMode, int]] = [(mode, mode, k) for mode in POSITION_MODES]
    wide = min(int(n_classes), WIDE_TOPK)
    if wide > k:
        found.append((f"median of all {wide} classes" if wide == n_classes else f"median of the top {wide}", "median", wide))
    return found


def choose_position(
    val_probs: np.ndarray, val_true_latlon: np.ndarray, centroids_latlon: np.ndarray, k: int = 5,
    bar: tuple[float, float] = (float("nan"), float("nan")),
) -> PositionChoice:
    """The position val ranks best by the one small-data rule (`baselines.bar_scores` against
    `bar`, `baselines.target_bar`; without one, the median km), with every candidate's val figures.

    A tie keeps the earlier candidate of `position_candidates` (the simpler one).
    """
    candidates = position_candidates(len(centroids_latlon), k)
    scores = {name: bar_scores(position_errors_km(_positions(val_probs, centroids_latlon, mode, kk), val_true_latlon), bar)
              for name, mode, kk in candidates}
    best = min(range(len(candidates)), key=lambda i: (scores[candidates[i][0]]["score"], i))
    _, mode, chosen_k = candidates[best]
    return PositionChoice(mode, chosen_k, scores)


@dataclass(frozen=True)
class ScoredSplit:
    """A split's metrics with the per-photo positions and errors they came from."""

    metrics: dict[str, float]
    pred_latlon: np.ndarray
    err_km: np.ndarray


def score_split(
    probs: np.ndarray,
    labels: np.ndarray,
    true_latlon: np.ndarray,
    centroids_latlon: np.ndarray,
    mode: PositionMode = "top1",
    k: int = 5,
) -> ScoredSplit:
    """`geo_metrics` of one split, placing each photo by `mode`.

    Args:
        probs: [N, C] class probabilities (calibrated or not: positions use them as weights).
        labels: [N] true classes.
        true_latlon: [N, 2] true positions.
        centroids_latlon: [C, 2] class centroids.
        mode: "top1" or "weighted".
        k: cells in the weighted position.
    """
    pred = _positions(probs, centroids_latlon, mode, k)
    err = position_errors_km(pred, true_latlon)
    return ScoredSplit(geo_metrics(err, probs, labels), pred, err)
