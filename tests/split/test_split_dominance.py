"""The dominance cap: exact per-class limit, train-only downsampling, unattainable caps."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from manifest_factory import manifest_frame, write

from geolocate.cells import run_cells
from geolocate.config import load_config
from geolocate.split import run_split
from geolocate.split.dominance import cap_dominance, class_limit


def test_class_limit_solves_the_cap_exactly():
    # K ≤ 0.25 · (K + 40) → K ≤ 13.3: one dominant class of 100 keeps 13 rows.
    assert class_limit(np.array([100, 10, 10, 10, 10]), 0.25) == 13
    assert class_limit(np.array([10, 10, 10, 10]), 0.25) == 10  # already at the cap exactly
    assert class_limit(np.array([5] * 10), 0.1) == 5  # float rounding of 0.1 · 50 must not bite


def test_fewer_classes_than_one_over_the_cap_is_unattainable():
    assert class_limit(np.array([50, 40, 30]), 0.25) is None
    assert class_limit(np.array([7]), 0.5) is None


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(1, 10_000), min_size=1, max_size=30), cap=st.floats(0.02, 1.0))
def test_the_limit_meets_the_cap_and_is_the_largest_that_does(counts, cap):
    n = np.array(counts)
    limit = class_limit(n, cap)
    if limit is None:
        assert len(counts) * cap < 1 + 1e-9
        return
    kept = np.minimum(n, limit)
    assert kept.max() <= cap * kept.sum() * (1 + 1e-9)
    if limit < n.max():  # one more row per class would break the cap
        bigger = np.minimum(n, limit + 1)
        assert bigger.max() > cap * bigger.sum()


def test_cap_dominance_only_trims_the_dominant_classes_deterministically():
    train = pl.DataFrame({
        "image_id": [str(i) for i in range(140)],
        "cell_id": ["a"] * 100 + ["b"] * 10 + ["c"] * 10 + ["d"] * 10 + ["e"] * 10,
    })
    outcome = cap_dominance(train, 0.25, seed=0)
    removed = set(outcome.removed["image_id"])
    assert len(removed) == 87 and removed <= {str(i) for i in range(100)}
    assert outcome.capped_cells == [{"cell_id": "a", "train_before": 100, "train_after": 13}]
    assert outcome.share_after == 13 / 53 <= 0.25
    assert set(cap_dominance(train.reverse(), 0.25, seed=0).removed["image_id"]) == removed
    assert set(cap_dominance(train, 0.25, seed=1).removed["image_id"]) != removed


def test_cap_that_holds_already_removes_nothing():
    train = pl.DataFrame({"image_id": ["1", "2", "3", "4"], "cell_id": ["a", "b", "c", "d"]})
    outcome = cap_dominance(train, 0.25, seed=0)
    assert outcome.attainable and outcome.removed.is_empty() and outcome.share_after == 0.25


def _dominated(tmp_path):
    """A data set where Paris dwarfs the other cities, labelled at a coarse resolution."""
    frame = pl.concat([
        manifest_frame(60, seed=1, cities=(("Paris", 48.8566, 2.3522, "01"),), spread_m=300),
        manifest_frame(12, seed=2, cities=(("Lyon", 45.764, 4.8357, "01"), ("Rennes", 48.1173, -1.6778, "02"),
                                          ("Lille", 50.6292, 3.0573, "02"), ("Nice", 43.7102, 7.262, "03")), spread_m=300)
        .with_columns(image_id=(pl.col("image_id").cast(pl.Int64) + 10**6).cast(pl.Utf8),
                      sequence_id=pl.lit("b") + pl.col("sequence_id")),
    ]).with_columns(path=pl.lit("raw/") + pl.col("image_id") + ".jpg")  # the manifest guard checks it
    data = write(tmp_path / "data", frame)
    cfg = load_config(None, "tiny", ["cells.resolution=3", "cells.min_samples=10"])
    run_cells(cfg.cells, data)
    return data, cfg


def test_run_split_caps_train_and_leaves_val_and_test_alone(tmp_path):
    data, cfg = _dominated(tmp_path)
    loose = cfg.model_copy(update={"cells": cfg.cells.model_copy(update={"max_dominance": 1.0})})
    uncapped = run_split(loose, data).split
    result = run_split(cfg, data)
    dom = result.report["dominance"]
    assert dom["largest_share_before"] > 0.25 >= dom["largest_share_after"] and dom["downsampled_rows"] > 0
    for split in ("val", "test"):
        assert result.split.filter(pl.col("split") == split).equals(uncapped.filter(pl.col("split") == split))
    train = result.split.filter(pl.col("split") == "train").join(pl.read_parquet(data.labels), on="image_id")
    assert train.group_by("cell_id").len()["len"].max() / train.height <= 0.25
    assert uncapped.height - result.split.height == dom["downsampled_rows"]


def test_unattainable_cap_is_reported_and_train_kept(tmp_path):
    data, cfg = _dominated(tmp_path)
    strict = cfg.model_copy(update={"cells": cfg.cells.model_copy(update={"max_dominance": 0.05})})
    dom = run_split(strict, data).report["dominance"]
    assert dom["attainable"] is False and dom["downsampled_rows"] == 0
