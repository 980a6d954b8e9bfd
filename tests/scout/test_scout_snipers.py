"""The small-data sniper (neighbour average), the choice between snipers on val, and weighted positions."""

from __future__ import annotations

import numpy as np
import torch

from geolocate.artifacts.checkpoint import save_checkpoint
from geolocate.models.sniper import NeighbourSniper, SniperInputs, SniperRegressor, sniper_positions
from geolocate.scout.bundle import NEIGHBOURS_MODEL, combine, load_sniper
from geolocate.train.sniper import choose_sniper, sniper_candidates

KEYS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
PLACES = torch.tensor([[44.70, -1.20], [44.60, -1.10], [44.65, -1.15]], dtype=torch.float64)


def _inputs(features: torch.Tensor, truth: torch.Tensor) -> SniperInputs:
    n = len(features)
    return SniperInputs(features, torch.zeros(n, dtype=torch.long), torch.ones(n), truth.clone(), truth)


def test_neighbour_sniper_places_a_location_among_its_most_similar_train_locations():
    one = NeighbourSniper.of(KEYS, PLACES, k=1)
    got = sniper_positions(one, _inputs(torch.tensor([[2.0, 0.1], [0.1, 3.0]]), PLACES[:2]))
    assert torch.allclose(got, PLACES[:2])  # scale does not matter: cosine similarity
    two = sniper_positions(NeighbourSniper.of(KEYS, PLACES, k=2), _inputs(torch.tensor([[1.0, 0.05]]), PLACES[:1]))
    # between the nearest (first) and the second nearest (third), nearer the first
    assert PLACES[2, 0] < two[0, 0] < PLACES[0, 0] and two[0, 0] - PLACES[2, 0] > PLACES[0, 0] - two[0, 0]


def test_neighbour_sniper_round_trips_through_a_checkpoint(tmp_path):
    sniper = NeighbourSniper.of(KEYS, PLACES, k=2)
    save_checkpoint(tmp_path / "sniper", sniper, {"model": {"name": NEIGHBOURS_MODEL, "kwargs": sniper.model_kwargs, "num_classes": 0},
                                                  "classes": [], "preprocessing": None})
    loaded, _ = load_sniper(tmp_path / "sniper")
    probe = _inputs(torch.tensor([[0.3, 0.9]]), PLACES[:1])
    assert isinstance(loaded, NeighbourSniper) and torch.allclose(sniper_positions(loaded, probe), sniper_positions(sniper, probe))


def test_choose_sniper_keeps_the_candidate_closest_to_beating_the_bar():
    truth = PLACES[:2]
    val = _inputs(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), truth)
    mlp = SniperRegressor(2, 1)  # untrained: the scouts' position unmoved
    val.centroid[:] = torch.tensor([44.0, -1.0], dtype=torch.float64)  # tens of km off
    candidates = [("mlp", mlp), ("neighbours (k=1)", NeighbourSniper.of(KEYS, PLACES, k=1))]
    chosen, rows = choose_sniper(candidates, val, bar=(5.0, 10.0))
    assert chosen is candidates[1][1] and [r["chosen"] for r in rows] == [False, True]
    assert rows[1]["val_median_km"] < 1e-6 and rows[0]["val_score"] > 1


def test_neighbour_snipers_are_only_tried_on_small_data():
    train = _inputs(torch.randn(30, 2), PLACES[torch.randint(0, 3, (30,))])
    assert [name for name, _ in sniper_candidates(None, train, small_data=False)] == ["mlp"]
    assert [name for name, _ in sniper_candidates(None, train, small_data=True)] == ["mlp", "neighbours (k=5)", "neighbours (k=10)",
                                                                                     "neighbours (k=20)"]


def test_combine_places_by_top1_or_by_weighted_regions():
    centroids = np.array([[44.0, -1.0], [45.0, -1.0]])
    logits = [np.log(np.array([[0.6, 0.4]]))]
    fused = [torch.zeros(1, 2)]
    top1 = combine(logits, fused, [1.0], centroids, position="top1")
    weighted = combine(logits, fused, [1.0], centroids, position="weighted", topk=2)
    assert np.allclose(top1.before, [[44.0, -1.0]])
    assert abs(weighted.before[0, 0] - 44.4) < 0.01 and top1.top1[0] == weighted.top1[0] == 0
