"""The k-NN vote heads as scout candidates, through the CLI: chosen on val, saved, evaluated, predicted."""

from __future__ import annotations

import json

import polars as pl
import pytest

P = ("--profile", "tiny-scout-sniper")


def test_vote_heads_are_candidates_a_scout_run_saves_and_predicts_with(cli, workdir):
    for command in (("synth", *P, "--n", "240"), ("prepare", *P), ("locations", *P), ("regions", *P)):
        assert cli(*command).exit_code == 0
    heads = ("--set", "train.small_data_heads=['knn', 'knn+probe']")  # only vote heads: one of them is saved
    result = cli("train", *P, *heads, "--phase", "all", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout[result.stdout.index("["):])[0]
    root = workdir / "runs" / run["run_id"]
    table = json.loads((root / "metrics.json").read_text())["head_selection"]["scout-clip"]
    assert [row["head"] for row in table] == ["knn", "knn+probe"] and sum(row["chosen"] for row in table) == 1
    votes = json.loads((root / "scout-clip.json").read_text())["model"]["kwargs"]["votes"]
    assert votes["size"] > 0 and votes["k"] in (5, 10, 20) and 0 < votes["alpha"] <= 1

    # the run predicts: each vote head rebuilds its index from its checkpoint (the run, promoted or not)
    data = workdir / "data"
    manifest = dict(pl.read_parquet(data / "manifest.parquet").select("image_id", "processed_path").iter_rows())
    loc = pl.read_parquet(data / "locations.parquet").filter(pl.col("north").is_not_null()).row(0, named=True)
    result = cli("predict", *P, "--checkpoint", root, "--north", data / manifest[loc["north"]], "--json")
    assert result.exit_code == 0, result.output
    assert -90 <= json.loads(result.stdout)["predictions"][0]["lat"] <= 90



def _locations(n: int, centres, gen):
    """`n` locations of a `ViewSet`, each class's views scattered widely around its centre."""
    import torch

    from geolocate.data.views import ViewSet

    labels = torch.arange(n) % len(centres)
    features = centres[labels][:, None, :] + 3.0 * torch.randn(n, 4, centres.shape[1], generator=gen)
    latlon = torch.stack([labels.double(), labels.double()], 1) + 0.01 * torch.rand(n, 2, generator=gen, dtype=torch.float64)
    return ViewSet([f"loc{i}" for i in range(n)], features, torch.ones(n, 4, dtype=torch.bool), labels, latlon)


def _head_on_cached_views(seed: int):
    """(an untrained probe-fusion head, 30 train and 12 val locations in 3 classes, a judge of val)."""
    import numpy as np
    import torch

    from geolocate.evaluate.choice import ValJudge
    from geolocate.models.multiview import FusionHead

    gen = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(3, 8, generator=gen)
    data = {"train": _locations(30, centres, gen), "val": _locations(12, centres, gen)}
    centroids = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    judge = ValJudge(data["val"].labels.numpy(), data["val"].latlon.numpy(), centroids, (50.0, 100.0))
    return FusionHead(8, 3, kind="probe"), data, judge


def _held_out_as_chosen(head, data, judge, chosen_row: dict, keys) -> None:
    """`split_outputs` measures val as the choice saw it (train only) and the same locations as test
    with what joined since."""
    import numpy as np

    from geolocate.train.view_heads import split_outputs

    outputs = split_outputs(head, {"val": data["val"], "test": data["val"]})  # the same locations under both names
    chosen = {key: chosen_row[key] for key in keys}
    assert {key: judge.score(outputs["val"]["logits"])[key] for key in chosen} == pytest.approx(chosen)
    assert not np.allclose(outputs["test"]["logits"], outputs["val"]["logits"])


def test_val_locations_join_a_vote_head_and_its_val_outputs_stay_held_out():
    from geolocate.config import TrainConfig
    from geolocate.models.votes import VoteClassifier
    from geolocate.train.view_heads import fit_vote_head

    head, data, judge = _head_on_cached_views(0)
    fit = fit_vote_head(head, data, TrainConfig(), 0, judge, with_probe=False)

    votes = head.classifier.settings
    assert (votes["train_size"], votes["size"]) == (30, 42)
    _held_out_as_chosen(head, data, judge, fit.best_row, ("val_median_km", "val_p90_km", "val_acc_top1"))
    assert isinstance(head.classifier, VoteClassifier) and not head.classifier.held_out

