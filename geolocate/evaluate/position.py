"""Predicted positions: the top-1 cell centroid, or a probability-weighted position over the top-k.

The weighted position averages unit vectors on the sphere (then projects back), not raw
lat/lon: the two agree within a metre for cells 5 km apart, but the lat/lon mean
breaks across the antimeridian (the mean of 179° and −179° would be 0°) and near the poles,
and a US-wide model mixes far-apart regions. Probabilities are renormalised over the top-k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from geolocate.evaluate.metrics import geo_metrics, topk_indices
from geolocate.geo import haversine_km, spherical_mean

PositionMode = Literal["top1", "weighted"]
POSITION_MODES: tuple[PositionMode, ...] = ("top1", "weighted")


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


def _positions(probs: np.ndarray, centroids_latlon: np.ndarray, mode: PositionMode, k: int) -> np.ndarray:
    """[N, 2] predicted (lat, lon) by `mode`."""
    if mode == "top1":
        return top1_positions(probs, centroids_latlon)
    if mode == "weighted":
        return weighted_positions(probs, centroids_latlon, k)
    raise ValueError(f"position mode must be one of {POSITION_MODES}, not {mode!r}")


def predicted_positions(
    probs: np.ndarray, centroids_latlon: np.ndarray, mode: PositionMode, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted latitudes and longitudes ([N] each) by `mode`: "top1", or "weighted" over the top-`k`."""
    pos = _positions(probs, centroids_latlon, mode, k)
    return pos[:, 0], pos[:, 1]


def position_errors_km(pred_latlon: np.ndarray, true_latlon: np.ndarray) -> np.ndarray:
    """[N] great-circle error in km between predicted and true (lat, lon) rows."""
    pred, true = np.asarray(pred_latlon, dtype=np.float64), np.asarray(true_latlon, dtype=np.float64)
    return haversine_km(pred[:, 0], pred[:, 1], true[:, 0], true[:, 1])


def choose_position_mode(
    val_probs: np.ndarray, val_true_latlon: np.ndarray, centroids_latlon: np.ndarray, k: int = 5
) -> tuple[PositionMode, dict[PositionMode, float]]:
    """The mode with the lower val median km, and both medians. A tie keeps "top1" (simpler)."""
    medians = {
        mode: float(np.median(position_errors_km(_positions(val_probs, centroids_latlon, mode, k), val_true_latlon)))
        for mode in POSITION_MODES
    }
    best: PositionMode = "weighted" if medians["weighted"] < medians["top1"] else "top1"
    return best, medians


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
