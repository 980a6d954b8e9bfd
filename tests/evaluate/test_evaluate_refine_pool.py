"""Retrieval refinement: chosen on val with train alone, then val joins the index for test and predict."""

from __future__ import annotations

import numpy as np

from geolocate.artifacts.resolve import INDEX_SUFFIX, file_of
from geolocate.evaluate import refine
from geolocate.evaluate.collect import Outputs
from geolocate.evaluate.metrics import geo_metrics
from geolocate.evaluate.position import ScoredSplit, position_errors_km
from geolocate.evaluate.retrieval import load_index

PARIS, LYON, VIENNE = np.array([48.85, 2.35]), np.array([45.76, 4.83]), np.array([45.52, 4.87])


def _photos(n: int, place: np.ndarray, label: int, look: list[float], seed: int) -> Outputs:
    rng = np.random.default_rng(seed)
    latlon = place + rng.normal(0, 0.005, (n, 2))
    embeddings = np.tile(look, (n, 1)) + rng.normal(0, 0.02, (n, 3))
    return Outputs(np.zeros((n, 2), np.float32), np.full(n, label), latlon[:, 0], latlon[:, 1], [f"{seed}-{i}" for i in range(n)],
                   embeddings)


def _join(*parts: Outputs) -> Outputs:
    return Outputs(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("logits", "labels", "lat", "lon")),
                   sum((p.image_ids for p in parts), []), np.concatenate([p.embeddings for p in parts]))


def _side(out: Outputs, probs: np.ndarray, centroids: np.ndarray):
    pos = centroids[probs.argmax(1)]
    err = position_errors_km(pos, np.stack([out.lat, out.lon], 1))
    return out, probs, ScoredSplit(geo_metrics(err, probs, out.labels), pos, err)


def test_val_joins_the_index_after_the_choice_and_only_test_searches_it(tmp_path, monkeypatch):
    """Train knows Paris and Lyon; val and test also hold Vienne (class 1, Lyon's cell, its own look).
    Val is placed with train alone (its Vienne photos go to Lyon's photos, 27 km off); test's Vienne
    photos find val's and land in Vienne."""
    monkeypatch.setattr(refine, "_weights_id", lambda stem: "w")
    centroids = np.array([PARIS + 0.05, LYON + 0.05])  # a cell's centroid is a few km from its photos: refining pays on val
    train = _join(_photos(20, PARIS, 0, [1, 0, 0], 0), _photos(20, LYON, 1, [0, 1, 0], 1))
    val = _join(_photos(10, PARIS, 0, [1, 0, 0], 2), _photos(10, LYON, 1, [0, 1, 0], 3), _photos(25, VIENNE, 1, [0, 0.6, 0.8], 4))
    test = _photos(10, VIENNE, 1, [0, 0.6, 0.8], 5)
    probs = lambda out: np.eye(2)[out.labels] * 0.8 + 0.1  # noqa: E731  the classifier knows the cell
    stem = tmp_path / "best"
    record, val_scored, test_scored = refine.apply_retrieval(stem, train, _side(val, probs(val), centroids),
                                                              _side(test, probs(test), centroids), bar=(100.0, 200.0))
    assert record["enabled"] and record["index_of"] == "train + val" and record["index_size"] == 85
    assert np.median(test_scored.err_km) < 3.0  # among val's Vienne photos
    assert np.sort(val_scored.err_km)[-25:].min() > 20.0  # val's Vienne photos never found themselves
    saved = load_index(file_of(stem, INDEX_SUFFIX), "w")
    assert len(saved.labels) == 85 and record["index_sha256"]
