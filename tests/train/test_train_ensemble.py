"""Ensemble weights: fitted on val NLL, favour the better scout, never worse than the best one."""

from __future__ import annotations

import numpy as np
import pytest

from geolocate.evaluate.calibration import nll
from geolocate.train.ensemble import ensemble_logits, fit_ensemble_weights


def _scout(labels, classes, signal, rng, noise=1.0):
    """Logits with `signal` on the true class plus Gaussian noise."""
    return signal * np.eye(classes)[labels] + rng.normal(0.0, noise, (len(labels), classes))


def test_weights_favour_the_better_model():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 1500)
    good, weak = _scout(labels, 6, 3.0, rng), _scout(labels, 6, 0.7, rng)
    fit = fit_ensemble_weights([weak, good], labels)
    assert fit.weights[1] > fit.weights[0] >= 0.0
    assert fit.nll <= min(fit.single_nll)
    assert fit.nll == pytest.approx(nll(ensemble_logits([weak, good], fit.weights), labels))


def test_complementary_scouts_beat_both():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, 2000)
    half = np.arange(2000) < 1000
    # Each scout is informative on one half only: together they should clearly win.
    a = np.where(half[:, None], _scout(labels, 5, 3.0, rng), rng.normal(0, 1, (2000, 5)))
    b = np.where(~half[:, None], _scout(labels, 5, 3.0, rng), rng.normal(0, 1, (2000, 5)))
    fit = fit_ensemble_weights([a, b], labels)
    assert fit.nll < min(fit.single_nll) - 0.1
    assert min(fit.weights) > 0.3


@pytest.mark.parametrize("seed", range(4))
def test_never_worse_than_the_best_single_model(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 300)
    scouts = [_scout(labels, 4, s, rng, noise=n) for s, n in ((1.0, 2.0), (0.0, 1.0), (2.0, 0.5))]
    fit = fit_ensemble_weights(scouts, labels)
    assert fit.nll <= min(fit.single_nll)
    assert all(w >= 0.0 for w in fit.weights)
    assert fit_ensemble_weights(scouts, labels) == fit  # deterministic


def test_useless_model_gets_no_weight():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 1000)
    noise = rng.normal(0, 3, (1000, 4))
    fit = fit_ensemble_weights([_scout(labels, 4, 2.0, rng), noise], labels)
    assert fit.weights[1] < 0.05 * fit.weights[0]


def test_ensemble_logits_and_bad_input():
    z = [np.ones((2, 3)), 2 * np.ones((2, 3))]
    np.testing.assert_allclose(ensemble_logits(z, [0.5, 2.0]), 4.5 * np.ones((2, 3)))
    with pytest.raises(ValueError):
        ensemble_logits(z, [1.0])
    with pytest.raises(ValueError):
        fit_ensemble_weights([np.ones((2, 3))], np.array([0]))
