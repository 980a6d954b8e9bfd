"""Which heads a scout trains, and the shared choice among them on val (`train.system.choose_head`)."""

from __future__ import annotations

import pytest

from geolocate.config import load_config
from geolocate.scout.heads import heads_to_try


def _cfg(*overrides: str):
    return load_config(None, profile="tiny-scout-sniper", overrides=list(overrides))


@pytest.mark.parametrize(("overrides", "n_train", "expected"), [
    ((), 50, ["probe", "mean", "transformer"]),  # small data: every candidate (the tiny profile keeps no vote heads)
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


class _Fixed:
    """A system whose heads score as given, without training anything."""

    name = "test"

    def __init__(self, scores):
        self.scores, self.trained = scores, []

    def candidate_heads(self, n_train):
        return list(self.scores)

    def train_head(self, head):
        from geolocate.train.fitting import FitResult
        from geolocate.train.system import Candidate

        median, p90, score = self.scores[head]
        self.trained.append(head)
        row = {"epoch": 1, "val_median_km": median, "val_p90_km": p90, "val_score": score, "val_acc_top1": 0.5}
        return Candidate(head, FitResult(1, row, [row], seconds=0.1), row)


def test_choose_head_keeps_the_candidate_val_ranks_best():
    from geolocate.train.system import choose_head

    system = _Fixed({"probe": (1.2, 3.0, 0.8), "mean": (1.0, 5.0, 1.1), "transformer": (2.0, 6.0, 1.4)})
    chosen, table = choose_head(system, system.candidate_heads(50))
    # mean has the lowest median, but its p90 is beyond the trivial bar: the probe is the one that beats both
    assert chosen.head == "probe" and system.trained == ["probe", "mean", "transformer"]
    assert [(r["head"], r["chosen"]) for r in table] == [("probe", True), ("mean", False), ("transformer", False)]
    assert table[0]["val_score"] == 0.8 and table[0]["best_epoch"] == 1


def test_a_score_tie_goes_to_the_lower_median_then_to_the_first_candidate():
    from geolocate.train.system import choose_head

    chosen, _ = choose_head(_Fixed({"finetune": (2.0, 9.0, 1.0), "probe": (1.0, 9.0, 1.0)}), ["finetune", "probe"])
    assert chosen.head == "probe"
    chosen, _ = choose_head(_Fixed({"finetune": (2.0, 9.0, 1.0), "probe": (2.0, 9.0, 1.0)}), ["finetune", "probe"])
    assert chosen.head == "finetune"
