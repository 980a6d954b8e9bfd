"""The one rule that chooses on val (heads of both systems, the sniper)."""

from __future__ import annotations

import numpy as np

from geolocate.evaluate.choice import choose, error_row, scored_row


def test_the_rule_prefers_beating_the_bar_on_both_figures_over_the_lowest_median():
    bar = (10.0, 100.0)
    rows = [scored_row(5.0, 150.0, bar), scored_row(8.0, 90.0, bar), scored_row(9.0, 90.0, bar)]
    assert [round(r["val_score"], 2) for r in rows] == [1.5, 0.9, 0.9]
    assert choose(rows) == 1 and [r["chosen"] for r in rows] == [False, True, False]  # score tie → lower median


def test_identical_candidates_keep_the_first():
    bar = (10.0, 100.0)
    assert choose([scored_row(8.0, 90.0, bar), scored_row(8.0, 90.0, bar)]) == 0


def test_error_row_reads_per_example_errors():
    row = error_row(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), (3.0, 10.0))
    assert row["val_median_km"] == 3.0 and row["val_score"] > 1  # the tail is worse than the bar's p90
