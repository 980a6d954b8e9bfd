"""Predicted positions: top-1 centroid, weighted mean on the sphere, and the val choice."""

from __future__ import annotations

import numpy as np
import pytest

from geolocate.evaluate.position import (
    choose_position,
    position_candidates,
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


def test_choose_position_mode_picks_the_best_val_score():
    split = np.tile([0.5, 0.5, 0.0, 0.0], (3, 1))
    midpoints = np.tile([0.0, 5.0], (3, 1))
    chosen = choose_position(split, midpoints, CENTROIDS, k=2)
    mode, scores = chosen.mode, chosen.scores
    assert mode == "weighted" and chosen.k == 2 and scores["weighted"]["median_km"] < 1e-6 < scores["top1"]["median_km"]
    sure = np.tile([0.6, 0.4, 0.0, 0.0], (3, 1))
    at_first = np.tile([0.0, 0.0], (3, 1))
    chosen = choose_position(sure, at_first, CENTROIDS, k=2)
    mode, scores = chosen.mode, chosen.scores
    # top-1 and the median both sit on the heavier cell: the tie keeps the simpler top-1
    assert mode == "top1" and scores["top1"]["median_km"] == 0.0 and scores["median"]["median_km"] < 1e-6


def test_the_median_is_chosen_on_val_when_probability_is_split_between_far_places():
    """40 % on one continent, 60 % on two close cells of another: top-1 picks the lone cell, the mean
    lands in the ocean between, the median goes where most of the probability is."""
    far = np.array([[0.0, 0.0], [0.0, 120.0], [5.0, 120.0]])
    probs = np.tile([0.4, 0.3, 0.3], (10, 1))
    truth = far[[0] * 4 + [1] * 3 + [2] * 3]  # the truth follows the probabilities
    chosen = choose_position(probs, truth, far, k=3, bar=(5000.0, 15000.0))
    mode, scores = chosen.mode, chosen.scores
    assert scores["median"]["score"] < min(scores["top1"]["score"], scores["weighted"]["score"])
    assert mode == "median" and set(scores["median"]) == {"median_km", "p90_km", "score"}


def test_median_of_two_antipodal_ish_modes_stays_on_the_heavier_one():
    modes = np.array([[0.0, 0.0], [0.0, 179.0]])
    probs = np.array([[0.6, 0.4]])
    median = predicted_positions(probs, modes, "median", k=2)
    assert abs(float(median[0][0])) < 1e-6 and abs(float(median[1][0])) < 1e-6  # on the 60 % mode
    tie = np.stack(predicted_positions(np.array([[0.5, 0.5]]), modes, "median", k=2), 1)
    assert np.isfinite(tie).all() and position_errors_km(tie, modes[:1])[0] < 20000  # any point between them, no NaN
    apart = np.array([[0.0, 0.0], [0.0, 100.0]])  # a quarter of the world apart: the mean falls between
    mean = weighted_positions(probs, apart, k=2)
    median = np.stack(predicted_positions(probs, apart, "median", k=2), 1)
    assert position_errors_km(mean, apart[:1])[0] > 3000 and position_errors_km(median, apart[:1])[0] < 1e-6


def test_median_of_a_single_mode_is_that_mode():
    lat, lon = predicted_positions(np.array([[0.0, 0.0, 1.0, 0.0]]), CENTROIDS, "median", k=4)
    assert (float(lat[0]), float(lon[0])) == pytest.approx((10.0, 0.0), abs=1e-6)


def test_median_of_degenerate_inputs():
    same = np.tile([[45.0, 5.0]], (4, 1))  # every cell at one place
    np.testing.assert_allclose(np.stack(predicted_positions(np.full((1, 4), 0.25), same, "median", k=4), 1),
                               [[45.0, 5.0]], atol=1e-6)
    # three cells in a row along the equator, equal weights: the middle one (where the mean is too)
    row = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 20.0]])
    np.testing.assert_allclose(np.stack(predicted_positions(np.full((1, 3), 1 / 3), row, "median", k=3), 1),
                               [[0.0, 10.0]], atol=1e-6)
    # a triangle: the median is inside, and its expected error is below every corner's and the mean's
    tri = np.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    probs = np.array([[0.34, 0.33, 0.33]])
    expected = {mode: float((probs[0] * position_errors_km(np.repeat(np.stack(predicted_positions(probs, tri, mode, 3), 1), 3, 0),
                                                             tri)).sum()) for mode in ("top1", "weighted", "median")}
    assert expected["median"] < min(expected["top1"], expected["weighted"])
    assert predicted_positions(np.zeros((0, 3)), tri, "median", k=3)[0].shape == (0,)


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


def test_the_median_of_every_class_is_a_candidate_beside_the_top_k():
    names = [name for name, _, _ in position_candidates(40, 5)]
    assert names == ["top1", "weighted", "median", "median of all 40 classes"]
    assert [k for _, _, k in position_candidates(400, 5)][-1] == 256  # capped: the tail weighs nothing
    assert len(position_candidates(5, 5)) == 3  # top-5 of 5 classes already is every class


def test_val_chooses_the_median_of_every_class_when_the_mass_is_spread_past_the_top_k():
    """Ten cells on a ring around the truth, none likely: the top-2 median sits on a cell of the ring,
    the median of all ten at its centre, where such photos are."""
    angles = np.radians(np.arange(10) * 36.0)
    ring = np.stack([10.0 * np.sin(angles), 10.0 * np.cos(angles)], 1)
    probs = np.tile(np.linspace(0.11, 0.09, 10), (6, 1))
    probs /= probs.sum(1, keepdims=True)
    truth = np.zeros((6, 2))
    chosen = choose_position(probs, truth, ring, k=2)
    assert (chosen.mode, chosen.k) == ("median", 10)
    assert chosen.scores["median of all 10 classes"]["median_km"] < 0.2 * chosen.scores["median"]["median_km"]
