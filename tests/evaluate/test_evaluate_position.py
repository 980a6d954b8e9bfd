"""Predicted positions: top-1 centroid, weighted mean on the sphere, and the val choice."""

from __future__ import annotations

import numpy as np
import pytest

from geolocate.evaluate.position import (
    choose_position_mode,
    position_errors_km,
    predicted_positions,
    score_split,
    top1_positions,
    weighted_positions,
)

CENTROIDS = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 0.0], [20.0, 0.0]])


def test_top1_is_the_argmax_centroid():
    probs = np.array([[0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    assert top1_positions(probs, CENTROIDS).tolist() == [[0.0, 10.0], [20.0, 0.0]]


def test_weighted_equal_weights_give_the_great_circle_midpoint():
    probs = np.array([[0.4, 0.4, 0.2, 0.0], [0.0, 0.0, 0.5, 0.5]])
    # k = 2 drops the third cell of row 0; row 1's midpoint along a meridian is exactly lat 15.
    np.testing.assert_allclose(weighted_positions(probs, CENTROIDS, k=2), [[0.0, 5.0], [15.0, 0.0]], atol=1e-9)


def test_weighted_leans_towards_the_likelier_cell_and_handles_the_antimeridian():
    lean = weighted_positions(np.array([[0.75, 0.25, 0.0, 0.0]]), CENTROIDS, k=2)
    assert 0.0 < lean[0, 1] < 5.0 and abs(lean[0, 0]) < 1e-9
    across = weighted_positions(np.array([[0.5, 0.5]]), np.array([[0.0, 179.0], [0.0, -179.0]]), k=2)
    assert abs(across[0, 1]) == pytest.approx(180.0)  # a lat/lon mean would say 0°


def test_choose_position_mode_picks_the_lower_val_median():
    split = np.tile([0.5, 0.5, 0.0, 0.0], (3, 1))
    midpoints = np.tile([0.0, 5.0], (3, 1))
    mode, medians = choose_position_mode(split, midpoints, CENTROIDS, k=2)
    assert mode == "weighted" and medians["weighted"] < 1e-6 < medians["top1"]
    sure = np.tile([0.6, 0.4, 0.0, 0.0], (3, 1))
    at_first = np.tile([0.0, 0.0], (3, 1))
    mode, medians = choose_position_mode(sure, at_first, CENTROIDS, k=2)
    assert mode == "top1" and medians["top1"] == 0.0


def test_errors_and_bad_mode():
    err = position_errors_km(np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert err[0] == pytest.approx(111.19, abs=0.01)
    with pytest.raises(ValueError):
        predicted_positions(np.ones((1, 4)) / 4, CENTROIDS, "median")


def test_predicted_positions_returns_latitudes_and_longitudes():
    probs = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    lat, lon = predicted_positions(probs, CENTROIDS, "weighted", k=2)
    np.testing.assert_allclose(lat, [0.0, 20.0], atol=1e-9)
    np.testing.assert_allclose(lon, [5.0, 0.0], atol=1e-9)
    lat, lon = predicted_positions(probs[:1], CENTROIDS, "top1")
    assert (float(lat[0]), float(lon[0])) == (0.0, 0.0)


def test_score_split_ties_positions_errors_and_metrics():
    probs = np.array([[0.7, 0.3, 0.0, 0.0], [0.1, 0.1, 0.1, 0.7]])
    true = np.array([[0.0, 0.0], [10.0, 0.0]])
    scored = score_split(probs, np.array([0, 2]), true, CENTROIDS, mode="top1")
    assert scored.pred_latlon.tolist() == [[0.0, 0.0], [20.0, 0.0]]
    assert scored.err_km[0] == 0.0 and scored.err_km[1] == pytest.approx(1111.95, abs=0.01)
    assert scored.metrics["acc_top1"] == 0.5 and scored.metrics["over_500km"] == 0.5
