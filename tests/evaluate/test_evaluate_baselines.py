"""Baselines: each is what it claims on hand-made data, and the gates compare the model with them."""

from __future__ import annotations

import numpy as np
import pytest

from geolocate.config import GatesConfig
from geolocate.evaluate.baselines import Pool, all_baselines, best_trivial, centroid, knn, majority
from geolocate.evaluate.gates import evaluate_gates

CENTROIDS = np.array([[44.70, -1.10], [44.75, -1.20], [44.80, -1.15]])


def _pool(labels, jitter=0.001, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    latlon = CENTROIDS[labels] + rng.normal(0, jitter, (len(labels), 2))
    embeddings = np.eye(3)[labels] * 5 + rng.normal(0, 0.05, (len(labels), 3))  # class-revealing features
    return Pool(labels, latlon, embeddings)


def test_majority_always_guesses_the_most_frequent_pool_class():
    pool, test = _pool([0, 1, 1, 1, 2]), _pool([0, 1, 2, 1], seed=1)
    m = majority(pool, test, CENTROIDS)
    assert m["acc_top1"] == pytest.approx(0.5) and m["n"] == 4


def test_centroid_guesses_the_pool_mean_for_every_photo():
    pool, test = _pool([0, 1, 2] * 3), _pool([0, 1, 2], seed=2)
    m = centroid(pool, test, CENTROIDS)
    assert 0 < m["median_km"] < 10  # the three classes sit within ~10 km of their mean


def test_knn_on_class_revealing_embeddings_finds_the_class_and_the_place():
    pool, test = _pool([0, 1, 2] * 10), _pool([2, 0, 1, 1], seed=3)
    for k in (1, 5):
        m = knn(pool, test, 3, k)
        assert m["acc_top1"] == 1.0 and m["median_km"] < 0.5


def test_knn_ignores_the_scale_of_embeddings():
    pool, test = _pool([0, 1, 2] * 4), _pool([1, 2], seed=4)
    scaled = Pool(test.labels, test.latlon, test.embeddings * 1000)
    assert knn(pool, test, 3, 1) == knn(pool, scaled, 3, 1)


def test_all_baselines_and_the_best_trivial_one():
    pool, test = _pool([0, 0, 0, 1, 2]), _pool([1, 2, 2], seed=5)
    out = all_baselines(pool, test, CENTROIDS)
    assert list(out) == ["majority", "centroid", "1-NN", "5-NN", "ceiling"]
    assert out["ceiling"]["acc_top1"] == 1.0
    name, value = best_trivial(out, "median_km")
    assert value == min(out["majority"]["median_km"], out["centroid"]["median_km"]) and name in ("majority", "centroid")
    no_embeddings = all_baselines(Pool(pool.labels, pool.latlon), test, CENTROIDS)
    assert "1-NN" not in no_embeddings


def test_gates_fit_the_area():
    baselines = {"majority": {"median_km": 2.0, "p90_km": 16.0}, "centroid": {"median_km": 3.0, "p90_km": 9.0}}
    model = {"acc_top1": 0.3, "median_km": 1.9, "p90_km": 9.5}
    relative = evaluate_gates(model, 0.1, GatesConfig(), baselines)
    assert [g.name for g in relative] == ["beats_trivial_median_km", "beats_trivial_p90_km", "stability_std_km"]
    assert [g.passed for g in relative] == [True, False, True]  # p90 9.5 is not below the centroid's 9.0
    france = evaluate_gates(model, 0.1, GatesConfig(absolute=True), baselines)
    assert [g.name for g in france][:3] == ["accuracy", "median_km", "p90_km"] and len(france) == 6
    # Stability elsewhere is a share of the val median: 0.4 km of swing is noise at 3 km, not at 1 km
    steady = evaluate_gates(model, 0.4, GatesConfig(), baselines, stability_mean_km=3.0)[-1]
    shaky = evaluate_gates(model, 0.4, GatesConfig(), baselines, stability_mean_km=1.0)[-1]
    assert steady.name == shaky.name == "stability_std_share" and steady.passed and not shaky.passed
    assert evaluate_gates(model, 0.4, GatesConfig(absolute=True), baselines, stability_mean_km=3.0)[-1].name == "stability_std_km"


def test_collapse_guard_warns_only_when_one_class_takes_more_than_it_holds():
    from geolocate.evaluate.baselines import collapse_warning

    labels = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    assert "collapse: 88% of val goes to class 2" in collapse_warning(np.array([2, 2, 2, 2, 2, 2, 2, 1]), labels)
    assert collapse_warning(labels, labels) is None  # right answers are not a collapse
    skewed = np.array([0, 0, 0, 0, 0, 0, 1, 2])
    assert collapse_warning(skewed, skewed) is None  # one class really holds 75 %


def test_imported_photos_are_judged_against_their_own_baselines_even_under_france_v1():
    from geolocate.evaluate.gates import gates_for_area

    france = GatesConfig(absolute=True)
    assert gates_for_area(france, ["mapillary"]) == (france, None)
    relative, why = gates_for_area(france, ["import", "mapillary"])
    assert relative.absolute is False and "import" in why
    names = [g.name for g in evaluate_gates({"median_km": 1.0, "p90_km": 2.0}, 0.1, relative,
                                            {"majority": {"median_km": 2.0, "p90_km": 3.0}, "centroid": {"median_km": 3.0, "p90_km": 4.0}}, 1.0)]
    assert names == ["beats_trivial_median_km", "beats_trivial_p90_km", "stability_std_share"]


def test_the_gate_line_says_why_the_gates_differ_from_the_config():
    from geolocate.evaluate.tables import gate_basis

    plain = gate_basis(GatesConfig())
    assert plain.endswith("of itself.") and ";" not in plain
    assert gate_basis(GatesConfig(), "these photos were imported").endswith("of itself; these photos were imported.")


def test_collapse_advice_agrees_with_the_head_val_chose():
    from geolocate.evaluate.baselines import collapse_warning

    labels, collapsed = np.array([0, 1, 2, 3] * 2), np.array([2] * 7 + [1])
    assert "let model.head = auto choose" in collapse_warning(collapsed, labels)
    chosen = collapse_warning(collapsed, labels, chosen_head="probe")
    assert "model.head = auto" not in chosen and "even the head val chose among the candidates (probe)" in chosen
