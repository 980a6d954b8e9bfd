"""The k-NN vote heads as scout candidates, through the CLI: chosen on val, saved, evaluated, predicted."""

from __future__ import annotations

import json

import polars as pl

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
