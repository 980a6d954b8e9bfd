"""Which head a scout trains: the small-data choice on val, and the settings that bypass it."""

from __future__ import annotations

import polars as pl
import pytest

from geolocate.config import load_config
from geolocate.scout import head_choice
from geolocate.scout.head_choice import Trained, choose_head, heads_to_try
from geolocate.scout.heads import FitResult


def _cfg(*overrides: str):
    return load_config(None, profile="tiny-scout-sniper", overrides=list(overrides))


@pytest.mark.parametrize(("overrides", "n_train", "expected"), [
    ((), 50, ["probe", "mean", "transformer"]),  # small data: every candidate
    ((), 5000, ["transformer"]),  # enough data: model.fusion as asked
    (("train.small_data=10",), 50, ["transformer"]),
    (("model.head='probe'",), 5000, ["probe"]),
    (("model.head='finetune'",), 50, ["finetune"]),
    (("train.small_data_heads=['mean', 'mean', 'probe']",), 50, ["mean", "probe"]),
    (("model.freeze_backbone=false",), 5000, ["finetune"]),  # a training backbone is a fine-tune
])
def test_heads_to_try(overrides, n_train, expected):
    assert heads_to_try(_cfg(*overrides), n_train) == expected


def test_an_empty_candidate_list_is_refused():
    from geolocate.errors import UserError

    with pytest.raises(UserError, match="small_data_heads"):
        _cfg("train.small_data_heads=[]")


def _trained(head: str, median: float, p90: float, score: float) -> Trained:
    row = {"epoch": 1, "val_median_km": median, "val_p90_km": p90, "val_score": score, "val_acc_top1": 0.5}
    return Trained(head, None, FitResult({}, 1, [row], 0.1), {}, "fp", row)


def test_choose_head_keeps_the_candidate_val_ranks_best(monkeypatch):
    scores = {"probe": (1.2, 3.0, 0.8), "mean": (1.0, 5.0, 1.1), "transformer": (2.0, 6.0, 1.4)}
    monkeypatch.setattr(head_choice, "train_head", lambda ctx, phase, head: _trained(head, *scores[head]))

    class Ctx:
        cfg = _cfg()
        frame = pl.DataFrame({"split": ["train"] * 40 + ["val"] * 10})

    chosen, table = choose_head(Ctx(), "scout-clip")
    # mean has the lowest median, but its p90 is beyond the trivial bar: the probe is the one that beats both
    assert chosen.head == "probe"
    assert [(r["head"], r["chosen"]) for r in table] == [("probe", True), ("mean", False), ("transformer", False)]
