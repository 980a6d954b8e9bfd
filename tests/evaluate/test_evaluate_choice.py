"""The one rule that chooses on val (heads of both systems, sniper, position), and the collapse
warning that knows whether `model.head = auto` already chose."""

from __future__ import annotations

import numpy as np

from geolocate.evaluate.baselines import collapse_warning
from geolocate.evaluate.choice import auto_choice, choose, error_row, scored_row


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


def test_auto_choice_names_what_auto_chose_and_nothing_for_a_set_head():
    rows = [{"head": "finetune", "chosen": False}, {"head": "probe", "chosen": True}]
    assert auto_choice("auto", {"": rows}, "finetune") == "probe"
    assert auto_choice("auto", {"": []}, "finetune") == "finetune"  # one candidate, no table: auto's default
    assert auto_choice("probe", {"": rows}, "finetune") is None
    scouts = {"scout-clip": [{"head": "probe", "chosen": True}], "scout-convnext": [{"head": "mean", "chosen": True}]}
    assert auto_choice("auto", scouts, "transformer") == "scout-clip: probe, scout-convnext: mean"


def test_the_collapse_warning_agrees_with_the_chosen_head():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    collapsed = np.array([2, 2, 2, 2, 2, 2, 2, 1])
    by_hand = collapse_warning(collapsed, labels)
    assert "let model.head = auto choose" in by_hand
    chosen = collapse_warning(collapsed, labels, auto_chose="probe")
    assert "model.head = auto already chose the probe head" in chosen and "let model.head = auto" not in chosen
    assert "too small or too uninformative" in chosen
