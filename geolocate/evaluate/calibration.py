"""Confidence that means something: temperature scaling and the expected calibration error.

Temperature scaling divides every logit by one scalar T > 0 fitted on val by minimising the
negative log-likelihood; it changes confidences, never the ranking, so accuracy and km are
untouched. The NLL is convex in β = 1/T (a log-sum-exp of linear functions minus a linear
one), hence unimodal in log β too: a golden-section search over log β finds the optimum
deterministically, without gradients, learning rates or random restarts.
"""

from __future__ import annotations

import math

import numpy as np

from geolocate.evaluate.metrics import softmax

T_MIN, T_MAX = 0.05, 20.0
_GOLDEN = (math.sqrt(5) - 1) / 2


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of `labels` under softmax(logits / temperature)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    labels = np.asarray(labels, dtype=np.int64)
    zmax = z.max(axis=1)
    log_norm = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
    return float((log_norm - z[np.arange(len(labels)), labels]).mean())


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, t_min: float = T_MIN, t_max: float = T_MAX, tol: float = 1e-6
) -> float:
    """The temperature in [t_min, t_max] minimising the NLL of `labels` (golden-section on log 1/T).

    Args:
        logits: [N, C] uncalibrated val logits.
        labels: [N] true classes.
        t_min, t_max: search bounds; the optimum sits on a bound when the data push it there
            (for example perfectly separated logits want T → 0). Where the NLL is flat to float
            precision the search keeps the larger, less extreme temperature.
        tol: width of the final bracket in log 1/T (relative precision of T).
    """
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on an empty set")
    logits = np.asarray(logits, dtype=np.float64)

    def loss(log_beta: float) -> float:
        return nll(logits, labels, math.exp(-log_beta))

    lo, hi = math.log(1 / t_max), math.log(1 / t_min)
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = loss(a), loss(b)
    while hi - lo > tol:
        if fa <= fb:  # the minimum lies in [lo, b]
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = loss(a)
        else:  # the minimum lies in [a, hi]
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = loss(b)
    return float(math.exp(-(lo + hi) / 2))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE: Σ_b (n_b / N) · |accuracy_b − mean confidence_b| over equal-width confidence bins.

    Confidence is the top-1 probability; bin b holds confidences in ((b−1)/n, b/n], the first
    bin also holding 0.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("cannot compute a calibration error on an empty set")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / len(labels))


def calibration_summary(logits: np.ndarray, labels: np.ndarray, temperature: float, n_bins: int = 15) -> dict[str, float]:
    """ECE and NLL of `logits` before (T = 1) and after scaling by `temperature`.

    Pass val logits for the fit's own view, or test logits for the honest one (T fitted on val).
    """
    before, after = softmax(logits), softmax(logits, temperature)
    return {
        "temperature": float(temperature),
        "ece_before": expected_calibration_error(before, labels, n_bins),
        "ece_after": expected_calibration_error(after, labels, n_bins),
        "nll_before": nll(logits, labels),
        "nll_after": nll(logits, labels, temperature),
    }
