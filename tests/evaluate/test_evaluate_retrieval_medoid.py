"""Retrieval's `medoid` method: searched over every cell with 5 neighbours it is the 5-NN baseline,
so val can fall back on plain k-NN when the classifier does worse than it."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from geolocate.evaluate.baselines import Pool, knn
from geolocate.evaluate.position import position_errors_km
from geolocate.evaluate.refine import choose_refinement, refinement_grid
from geolocate.evaluate.retrieval import METHODS, build_index, refine_positions


def _photos(seed: int = 0, n: int = 120, cells: int = 6):
    """Photos scattered over `cells` towns 50 km apart, each with an embedding that mostly says where it is."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, cells, n)
    centres = np.column_stack([44.0 + 0.45 * np.arange(cells), np.full(cells, -1.0)])
    latlon = centres[labels] + rng.normal(0, 0.03, (n, 2))
    codes = rng.normal(size=(cells, 16))  # what each town looks like
    emb = codes[labels] + rng.normal(0, 0.4, (n, 16))
    return labels, latlon, emb, centres


def test_medoid_over_every_cell_with_five_neighbours_is_the_5nn_baseline():
    labels, latlon, emb, centres = _photos()
    train, test = slice(0, 90), slice(90, None)
    index = build_index(emb[train], latlon[train], labels[train])
    probs = np.random.default_rng(1).dirichlet(np.ones(len(centres)), 30)  # the probabilities play no part
    placed = refine_positions(probs, emb[test], index, top_cells=len(centres), neighbours=5, method="medoid")
    # the index holds its embeddings as float16: the baseline reads the same ones
    baseline = knn(Pool(labels[train], latlon[train], index.embeddings.astype(np.float64)),
                   Pool(labels[test], latlon[test], emb[test]), len(centres), 5)
    err = position_errors_km(placed, latlon[test])
    assert np.median(err) == pytest.approx(baseline["median_km"], rel=1e-9)
    assert np.percentile(err, 90) == pytest.approx(baseline["p90_km"], rel=1e-9)


def test_val_falls_back_on_plain_knn_when_the_classifier_is_worse():
    labels, latlon, emb, centres = _photos(seed=2)
    train, val = slice(0, 90), slice(90, None)
    index = build_index(emb[train], latlon[train], labels[train])
    wrong = (labels[val] + 3) % len(centres)  # a classifier sure of the wrong town
    probs = np.full((30, len(centres)), 0.01)
    probs[np.arange(30), wrong] = 0.95
    probs[np.arange(30), labels[val]] = 0.001  # the right town last: only a search of every cell reaches it
    base_err = position_errors_km(centres[wrong], latlon[val])
    record = choose_refinement(index, probs, emb[val], latlon[val], base_err, bar=(200.0, 400.0))
    assert record["enabled"] and record["top_cells"] == len(centres)  # every cell: the grid had stopped at 5
    assert record["val_score"]["retrieval"] < 0.2 * record["val_score"]["classifier"]


def test_plain_5nn_is_the_one_setting_that_searches_every_cell_and_the_only_medoid():
    for classes in (4, 5, 300):
        grid = refinement_grid(classes)
        assert [s for s in grid if s[2] == "medoid"] == [(classes, 5, "medoid")]
        assert max(k for k, _, m in grid if m != "medoid") == max(k for k in (1, 3, 5, 10) if k <= classes)


def test_an_unknown_method_is_refused_rather_than_read_as_another():
    labels, latlon, emb, centres = _photos()
    index = build_index(emb, latlon, labels)
    with pytest.raises(ValueError, match="retrieval methods are"):
        refine_positions(np.full((2, len(centres)), 1 / len(centres)), emb[:2], index, 3, 5, "nearest")


def test_the_sidecar_accepts_exactly_the_methods_retrieval_has():
    from geolocate.artifacts.sidecar_schema import RetrievalRecord

    assert typing.get_args(RetrievalRecord.model_fields["method"].annotation) == METHODS


@pytest.mark.parametrize("record", [{"enabled": True, "method": "nearest"}, {"enabled": True, "top_cells": 0},
                                    {"enabled": True, "neighbours": "5"}, {"enabled": "yes"}])
def test_a_tampered_retrieval_record_is_one_line_at_load(record):
    from geolocate.artifacts.sidecar_schema import check_prediction_sidecar
    from geolocate.errors import UserError

    sidecar = {"model": {"name": "tiny", "num_classes": 1}, "classes": [{"cell_id": "a", "centroid_lat": 1.0, "centroid_lon": 2.0}],
               "preprocessing": {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3}, "retrieval": record}
    check_prediction_sidecar({**sidecar, "retrieval": {"enabled": False, "reason": "off"}})
    with pytest.raises(UserError, match="retrieval") as caught:
        check_prediction_sidecar(sidecar)
    assert "\n" not in str(caught.value)
