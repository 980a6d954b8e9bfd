"""Logit-level ensemble of scouts, with non-negative weights fitted on val log-loss.

The ensemble's logits are `Σ_m w_m · z_m` with every w_m ≥ 0. The weights are not normalised:
their sum acts as a temperature, so no separate calibration is needed afterwards. The val NLL
is convex in w, so a projected Newton method converges to the optimum. It starts from the best
single model (w = e_best) and only accepts steps that lower the NLL, so the fitted ensemble is
never worse on val than the best single scout, and the result is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from geolocate.evaluate.calibration import nll


@dataclass(frozen=True)
class EnsembleFit:
    """Fitted weights, the ensemble's val NLL and each single model's val NLL (T = 1)."""

    weights: list[float]
    nll: float
    single_nll: list[float]


def ensemble_logits(logits: Sequence, weights: Sequence[float]):
    """`Σ_m w_m · logits_m`; works on numpy arrays and torch tensors alike."""
    if len(logits) != len(weights) or not logits:
        raise ValueError(f"{len(logits)} logit sets but {len(weights)} weights")
    total = float(weights[0]) * logits[0]
    for w, z in zip(weights[1:], logits[1:]):
        total = total + float(w) * z
    return total


def _objective(stack: np.ndarray, labels: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """NLL, gradient [M] and Hessian [M, M] at `w` for stacked logits [M, N, C]."""
    z = np.tensordot(w, stack, axes=1)
    value = nll(z, labels)  # the same function the line search and the single models use
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    weighted = stack * p[None]
    expected = weighted.sum(axis=2)  # [M, N]: E_p[z_m] per sample
    grad = (expected - stack[:, rows, labels]).mean(axis=1)
    second = np.tensordot(weighted, stack, axes=([1, 2], [1, 2])) / len(labels)
    hess = second - expected @ expected.T / len(labels)
    return value, grad, hess


def fit_ensemble_weights(logits: Sequence[np.ndarray], labels: np.ndarray, max_iter: int = 100) -> EnsembleFit:
    """Non-negative weights minimising val NLL of `softmax(Σ_m w_m · logits_m)`.

    Args:
        logits: one [N, C] val logit array per model, same rows and classes.
        labels: [N] true classes.
        max_iter: Newton iterations (a handful suffice: the problem has one variable per model).
    """
    stack = np.stack([np.asarray(z, dtype=np.float64) for z in logits])
    labels = np.asarray(labels, dtype=np.int64)
    if stack.ndim != 3 or len(labels) != stack.shape[1] or len(labels) == 0:
        raise ValueError("logits must be non-empty [N, C] arrays with one label per row")
    single = [nll(z, labels) for z in stack]
    w = np.eye(len(stack))[int(np.argmin(single))]
    value, grad, hess = _objective(stack, labels, w)
    for _ in range(max_iter):
        step = _newton_direction(w, grad, hess)
        w_new, value_new = _line_search(stack, labels, w, value, grad, step)
        if w_new is None or value - value_new < 1e-12:
            if w_new is not None:
                w, value = w_new, value_new
            break
        w = w_new
        value, grad, hess = _objective(stack, labels, w)
    return EnsembleFit([float(x) for x in w], float(value), single)


def _newton_direction(w: np.ndarray, grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """Newton step on the free weights; weights at 0 that the gradient pushes below 0 stay put."""
    free = (w > 0) | (grad < 0)
    step = np.zeros_like(w)
    if free.any():
        h = hess[np.ix_(free, free)] + 1e-9 * np.eye(int(free.sum()))
        step[free] = -np.linalg.solve(h, grad[free])
    return step


def _line_search(stack, labels, w, value, grad, step) -> tuple[np.ndarray | None, float]:
    """Backtrack until the projected step lowers the NLL enough (Armijo); None if it never does.

    The sufficient-decrease term is capped at 0 so that a step is accepted only when the NLL
    does not rise, whatever the projection did to the direction.
    """
    scale = 1.0
    for _ in range(40):
        w_new = np.maximum(w + scale * step, 0.0)
        candidate = nll(np.tensordot(w_new, stack, axes=1), labels)
        if candidate <= value + 1e-4 * min(float(grad @ (w_new - w)), 0.0):
            return w_new, candidate
        scale /= 2
    return None, value
