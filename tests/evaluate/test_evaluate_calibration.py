"""Temperature scaling recovers a known temperature; ECE by hand and after scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geolocate.evaluate.calibration import calibration_summary, expected_calibration_error, fit_temperature, nll
from geolocate.evaluate.metrics import softmax


def _synthetic(t0: float, n: int = 20000, classes: int = 10, seed: int = 0):
    """Labels drawn from softmax(true_logits); the model reports true_logits · t0, so the
    temperature that restores calibration is t0 (t0 > 1: overconfident, t0 < 1: underconfident)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, 2.0, (n, classes))
    p = softmax(true_logits)
    labels = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return true_logits * t0, labels


@pytest.mark.parametrize("t0", [0.5, 2.5])
def test_recovers_a_known_temperature(t0):
    logits, labels = _synthetic(t0)
    assert fit_temperature(logits, labels) == pytest.approx(t0, rel=0.05)


def test_scaling_lowers_ece_and_nll():
    logits, labels = _synthetic(2.5, seed=1)
    summary = calibration_summary(logits, labels, fit_temperature(logits, labels), n_bins=15)
    assert summary["ece_after"] < summary["ece_before"] / 3
    assert summary["ece_after"] < 0.03
    assert summary["nll_after"] < summary["nll_before"]


def test_fit_is_deterministic_and_bounded():
    logits, labels = _synthetic(2.0, n=2000, seed=2)
    assert fit_temperature(logits, labels) == fit_temperature(logits, labels)
    separable = np.eye(3)[[0, 1, 2, 0]]  # every argmax right: sharper is always better
    assert fit_temperature(separable, np.array([0, 1, 2, 0]), t_min=0.05) == pytest.approx(0.05, rel=1e-3)
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_nll_by_hand():
    assert nll(np.array([[0.0, 0.0]]), np.array([0])) == pytest.approx(math.log(2))
    assert nll(np.array([[2.0, 0.0]]), np.array([0]), temperature=2.0) == pytest.approx(math.log(1 + math.exp(-1)))


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    # bin 0.9: confidence 0.9, accuracy 1/2 → 0.4 · 2/4; bin 0.6: confidence 0.6, accuracy 1 → 0.4 · 2/4.
    assert expected_calibration_error(probs, np.array([0, 1, 0, 0]), n_bins=10) == pytest.approx(0.4)
    assert expected_calibration_error(np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 1]), 10) == 0.0
