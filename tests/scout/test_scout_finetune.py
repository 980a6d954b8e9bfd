"""A four-view scout whose backbone trains (`model.head = finetune`) goes through the whole run."""

from __future__ import annotations

import json

P = ("--profile", "tiny-scout-sniper")


def test_a_finetuned_scout_trains_evaluates_and_predicts(cli, workdir):
    assert cli("synth", *P, "--n", "160").exit_code == 0
    for step in ("prepare", "locations", "regions"):
        assert cli(step, *P).exit_code == 0
    result = cli("train", *P, "--phase", "scout-clip", "--set", "model.head=finetune", "--set", "train.epochs=1", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout[result.stdout.index("["):])[0]
    sidecar = json.loads((workdir / "runs" / run["run_id"] / "scout-clip.json").read_text())
    assert sidecar["head"] == "finetune" and "val_median_km" in sidecar["metrics"]["val"]
