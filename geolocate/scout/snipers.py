"""Which sniper a run keeps: the residual MLP, or on small data a neighbour average, chosen on val.

The MLP needs thousands of locations to learn offsets inside a region; on fewer than
`train.small_data` train locations the `NeighbourSniper` (mean position of the k most similar
train locations, k in `NEIGHBOUR_KS`) is tried beside it and val keeps whichever `ValJudge`'s
rule ranks best (the larger of its median and p90 ratios to the best trivial baseline, then the
median). The MLP's own epoch 0 is the scouts' position unmoved, so "no sniper" is always among
the candidates.
"""

from __future__ import annotations

import torch
from torch import nn

from geolocate.scout.heads import SniperInputs, sniper_positions

NEIGHBOUR_KS = (5, 10, 20)


def sniper_candidates(mlp: nn.Module, train: SniperInputs, small_data: bool) -> list[tuple[str, nn.Module]]:
    """(name, sniper) pairs to compare on val: the fitted MLP, and the neighbour snipers on small data."""
    from geolocate.models.sniper import NeighbourSniper

    found = [("mlp", mlp)]
    if small_data:
        found += [(f"neighbours (k={k})", NeighbourSniper.of(train.features, train.truth, k)) for k in NEIGHBOUR_KS if k <= len(train)]
    return found


def choose_sniper(candidates: list[tuple[str, nn.Module]], val: SniperInputs, bar: tuple[float, float]) -> tuple[nn.Module, list[dict]]:
    """The candidate with the best val rank, and one row per candidate for the report."""
    from geolocate.evaluate.baselines import bar_scores
    from geolocate.evaluate.position import position_errors_km

    rows = []
    for name, sniper in candidates:
        sniper.eval()
        with torch.inference_mode():
            err = position_errors_km(sniper_positions(sniper, val).numpy(), val.truth.numpy())
        rows.append({"head": name, **{f"val_{key}": value for key, value in bar_scores(err, bar).items()}})
    best = min(range(len(rows)), key=lambda i: (rows[i]["val_score"], rows[i]["val_median_km"]))
    for i, row in enumerate(rows):
        row["chosen"] = i == best
    return candidates[best][1], rows
