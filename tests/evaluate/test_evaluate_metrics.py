"""Metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geolocate.evaluate.metrics import (
    aggregate_seeds,
    confusion_matrix,
    error_stats,
    geo_metrics,
    label_ranks,
    softmax,
    stability_std_km,
    topk_accuracy,
    topk_indices,
)

SCORES = np.array([[0.1, 0.5, 0.3, 0.1], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.3, 0.2]])
LABELS = np.array([2, 0, 1])
# Ranks by hand: row 0 → class 1 beats class 2 (rank 1); row 1 → rank 0; row 2 → class 2 and
# class 0 (a tie broken by the lower index, as argmax does) beat class 1 (rank 2).


def test_label_ranks_and_topk_accuracy():
    assert label_ranks(SCORES, LABELS).tolist() == [1, 0, 2]
    assert topk_accuracy(SCORES, LABELS, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(SCORES, LABELS, 3) == 1.0


def test_logits_and_probabilities_rank_alike():
    logits = np.log(SCORES) + 7.0
    assert topk_accuracy(logits, LABELS, 2) == topk_accuracy(softmax(logits), LABELS, 2)


def test_ties_agree_with_argmax():
    tied = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert topk_accuracy(tied, np.array([0, 1]), 1) == 0.5
    assert np.argmax(tied[0]) == 0


def test_topk_indices_order():
    assert topk_indices(SCORES, 2).tolist() == [[1, 2], [0, 1], [2, 0]]
    assert topk_indices(SCORES, 10).shape == (3, 4)


def test_softmax_rows_sum_to_one_and_temperature_flattens():
    p = softmax(np.array([[1000.0, 0.0], [1.0, 2.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == 1.0
    assert softmax(np.array([[1.0, 2.0]]), 10.0)[0, 1] < softmax(np.array([[1.0, 2.0]]))[0, 1]


ERRORS = np.array([0, 0.5, 1, 2, 5, 10, 25, 100, 250, 600, 1000], dtype=float)


def test_error_stats_by_hand():
    s = error_stats(ERRORS[::-1])  # order must not matter
    assert s["median_km"] == 10.0
    assert s["mean_km"] == pytest.approx(1993.5 / 11)
    assert s["p90_km"] == 600.0  # linear interpolation at index 0.9 · 10 = 9
    assert s["p95_km"] == 800.0  # halfway between indices 9 and 10
    assert s["within_1km"] == pytest.approx(3 / 11)  # "within" includes the boundary
    assert s["within_5km"] == pytest.approx(5 / 11)
    assert s["within_25km"] == pytest.approx(7 / 11)
    assert s["over_200km"] == pytest.approx(3 / 11)
    assert s["over_500km"] == pytest.approx(2 / 11)


def test_geo_metrics_keys_are_stable():
    m = geo_metrics(ERRORS[:3], SCORES, LABELS)
    assert list(m) == [
        "n", "acc_top1", "acc_top5", "median_km", "mean_km", "p90_km", "p95_km",
        "within_1km", "within_5km", "within_25km", "within_200km", "within_750km", "within_2500km",
        "over_200km", "over_500km",
    ]  # fmt: skip
    assert m["n"] == 3 and m["acc_top5"] == 1.0
    assert "acc_top1" not in geo_metrics(ERRORS)
    with pytest.raises(ValueError):
        geo_metrics(np.array([]))


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_stability_std_over_last_epochs():
    # The first epoch (5 km) is outside the window; [1, 1.2, 0.8, 1] has variance 0.08 / 4.
    assert stability_std_km([5.0, 1.0, 1.2, 0.8, 1.0], last_k=4) == pytest.approx(math.sqrt(0.02))
    assert stability_std_km([3.0, 3.0], last_k=5) == 0.0
    assert math.isnan(stability_std_km([1.0], last_k=5))


def test_aggregate_seeds_mean_and_sample_std():
    out = aggregate_seeds([{"median_km": 1.0, "note": "a", "n": 10}, {"median_km": 3.0, "note": "b", "n": 10}])
    assert out["median_km"] == {"mean": 2.0, "std": pytest.approx(math.sqrt(2))}
    assert out["n"]["std"] == 0.0 and "note" not in out
    assert aggregate_seeds([{"median_km": 1.0}])["median_km"]["std"] == 0.0
