"""Harrell–Davis quantiles: what the val rule's score reads of a candidate's errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betainc
from scipy.stats.mstats import hdquantiles

from geolocate.evaluate.baselines import bar_ratio, bar_scores
from geolocate.evaluate.quantiles import harrell_davis, regularized_beta


@pytest.mark.parametrize("a", [0.3, 1.0, 5.5, 130.0])
@pytest.mark.parametrize("b", [0.2, 1.0, 3.0, 900.0])
def test_the_regularised_incomplete_beta_is_scipys(a, b):
    for x in np.linspace(0.0, 1.0, 41):
        assert regularized_beta(float(x), a, b) == pytest.approx(betainc(a, b, x), abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 12, 17, 68, 400, 2500])
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_the_estimate_is_scipys_hdquantiles(n, q):
    errors = np.random.default_rng(n).lognormal(size=n) * 1000.0
    assert harrell_davis(errors, q) == pytest.approx(float(hdquantiles(errors, [q])[0]), rel=1e-10)


def test_edge_cases_a_single_error_a_constant_val_and_an_empty_one():
    assert harrell_davis([7.0], 0.9) == pytest.approx(7.0)
    assert harrell_davis(np.full(15, 3.0), 0.5) == pytest.approx(3.0)
    assert np.isnan(harrell_davis([], 0.5))
    errors = np.random.default_rng(1).random(30)
    assert harrell_davis(errors, 0.5) < harrell_davis(errors, 0.9) <= errors.max()


def test_on_a_dozen_errors_the_median_varies_less_than_the_plain_one():
    draws = np.random.default_rng(0).exponential(size=(2000, 12))
    plain = np.median(draws, axis=1)
    smooth = np.array([harrell_davis(row, 0.5) for row in draws])
    assert smooth.std() < 0.97 * plain.std()


def test_the_p90_estimate_sees_the_errors_beyond_the_plain_p90():
    """Two vals with the same plain median and p90: the one with a photo sent ten times further scores worse."""
    near = np.array([1.0, 1.1, 1.2, 1.4, 1.5, 1.7, 2.0, 2.2, 2.5, 3.0, 4.0, 5.0])
    far = near.copy()
    far[-1] = 50.0
    assert np.percentile(near, [50, 90]) == pytest.approx(np.percentile(far, [50, 90]))
    assert harrell_davis(far, 0.9) > harrell_davis(near, 0.9) + 1.0


def test_the_val_score_reads_the_estimates_and_the_figures_stay_plain():
    errors = np.array([1.0, 1.2, 1.3, 1.5, 2.0, 2.2, 2.5, 3.0, 3.1, 4.0, 9.0, 40.0])
    bar = (2.5, 10.0)
    scored = bar_scores(errors, bar)
    assert scored["median_km"] == pytest.approx(np.median(errors)) and scored["p90_km"] == pytest.approx(np.percentile(errors, 90))
    assert scored["score"] == pytest.approx(bar_ratio(harrell_davis(errors, 0.5), harrell_davis(errors, 0.9), bar))
    assert scored["score"] != pytest.approx(bar_ratio(scored["median_km"], scored["p90_km"], bar))


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_a_quantile_outside_the_open_interval_is_refused(q):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        harrell_davis([1.0, 2.0], q)


def test_an_infinite_error_past_the_weights_reach_leaves_the_estimate_finite():
    errors = np.append(np.random.default_rng(2).random(2999), np.inf)
    assert np.isfinite(harrell_davis(errors, 0.5)) and harrell_davis(errors, 0.5) == pytest.approx(np.median(errors[:-1]), abs=0.02)
    assert harrell_davis([1.0, np.inf], 0.9) == np.inf  # when the infinite error carries weight, the estimate is infinite
