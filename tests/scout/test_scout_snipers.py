"""The small-data snipers (neighbour average, retrieval), the choice between snipers on val, and weighted positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geolocate.artifacts.checkpoint import save_checkpoint
from geolocate.evaluate.retrieval_sniper import RetrievalSniper
from geolocate.models.held_out import held_out
from geolocate.models.sniper import NeighbourSniper, SniperInputs, SniperRegressor, sniper_positions
from geolocate.scout.bundle import NEIGHBOURS_MODEL, RETRIEVAL_MODEL, combine, load_sniper
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


def _two_towns(n: int, seed: int, looks: bool, sure: float) -> SniperInputs:
    """Locations in two towns 11 km apart (regions 0 and 1), started between them. With `looks` each
    town's features lie along its own axis (else they are noise); the ensemble gives the true town
    probability `sure`."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    towns = torch.tensor([[44.60, -1.20], [44.70, -1.20]], dtype=torch.float64)
    truth = towns[labels] + 0.002 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    noise = torch.randn(n, 2, generator=gen)
    features = torch.eye(2)[labels] + 0.1 * noise if looks else noise
    probs = torch.where(torch.eye(2, dtype=torch.float64)[labels] > 0, sure, 1.0 - sure)
    start = towns.mean(0).expand(n, 2).clone()
    return SniperInputs(features, torch.zeros(n, dtype=torch.long), torch.full((n,), 0.5), start, truth, probs, labels)


def test_retrieval_sniper_is_a_small_data_candidate_and_val_keeps_it_when_the_regions_are_right():
    """The looks say nothing, the ensemble knows the town: the neighbour average mixes both towns, the
    unmoved MLP stays between them, retrieval searches the likeliest town only."""
    train, val = _two_towns(40, 0, looks=False, sure=0.9), _two_towns(20, 1, looks=False, sure=0.9)
    candidates = sniper_candidates(SniperRegressor(2, 1), train, small_data=True, val=val, bar=(5.0, 6.0))
    assert candidates[-1][0].startswith("retrieval (")
    chosen, rows = choose_sniper(candidates, val, bar=(5.0, 6.0))
    assert isinstance(chosen, RetrievalSniper) and rows[-1]["chosen"]
    assert rows[-1]["val_median_km"] < 1.0 < min(r["val_median_km"] for r in rows[:-1])
    without_probs = SniperInputs(*(getattr(val, f) for f in ("features", "region", "confidence", "centroid", "truth")))
    assert len(sniper_candidates(None, train, small_data=True, val=without_probs)) == 4  # nothing to weigh: not tried


def test_retrieval_sniper_round_trips_through_a_checkpoint_and_places_through_combine(tmp_path):
    train = _two_towns(40, 0, looks=True, sure=0.5)
    sniper = RetrievalSniper.of(train.features, train.truth, train.labels, {"top_cells": 2, "neighbours": 5, "method": "median"})
    save_checkpoint(tmp_path / "sniper", sniper, {"model": {"name": RETRIEVAL_MODEL, "kwargs": sniper.model_kwargs, "num_classes": 0},
                                                  "classes": [], "preprocessing": None})
    loaded, _ = load_sniper(tmp_path / "sniper")
    assert isinstance(loaded, RetrievalSniper) and loaded.method == "median"
    centroids = np.array([[44.60, -1.20], [44.70, -1.20]])
    looks_like_second = [torch.tensor([[0.0, 1.0]])]
    placed = combine([np.zeros((1, 2))], looks_like_second, [1.0], centroids, loaded, position="weighted", topk=2)
    assert abs(placed.before[0, 0] - 44.65) < 0.01  # the ensemble alone: halfway
    assert abs(placed.after[0, 0] - 44.70) < 0.01  # retrieval: the town it looks like


def test_an_index_sniper_chosen_on_val_then_searches_val_too_but_val_never_finds_itself():
    from geolocate.train.sniper import with_val

    train, val = _two_towns(40, 0, looks=True, sure=0.5), _two_towns(20, 1, looks=True, sure=0.5)
    for sniper in (NeighbourSniper.of(train.features, train.truth, k=1),
                   RetrievalSniper.of(train.features, train.truth, train.labels, {"top_cells": 2, "neighbours": 1, "method": "cluster"})):
        joined = with_val(sniper, train, val)
        assert len(joined.keys) == 60 and joined.train_size == 40
        exact = sniper_positions(joined, val)  # val searching everything: each finds itself
        assert torch.allclose(exact, val.truth)
        with held_out(joined):
            honest = sniper_positions(joined, val)
        assert torch.allclose(honest, sniper_positions(sniper, val))  # the train part only: what val chose on
        assert torch.allclose(sniper_positions(joined, val), exact)  # the state ends with the block
    assert with_val(SniperRegressor(2, 1), train, val).__class__ is SniperRegressor


@pytest.mark.parametrize("model, kwargs", [
    (NEIGHBOURS_MODEL, {"train_size": "40"}), (NEIGHBOURS_MODEL, {"train_size": 10**6}),
    (RETRIEVAL_MODEL, {"train_size": -1}), (RETRIEVAL_MODEL, {"method": "evil"}), (RETRIEVAL_MODEL, {"neighbours": 0}),
    (RETRIEVAL_MODEL, {"top_cells": 2.5}),
])
def test_an_edited_index_sniper_sidecar_is_refused_in_one_line(tmp_path, model, kwargs):
    from geolocate.errors import UserError

    train = _two_towns(40, 0, looks=True, sure=0.5)
    sniper = (NeighbourSniper.of(train.features, train.truth, k=2, train_size=30) if model == NEIGHBOURS_MODEL else
              RetrievalSniper.of(train.features, train.truth, train.labels, {"top_cells": 2, "neighbours": 5, "method": "median"}, 30))
    save_checkpoint(tmp_path / "sniper", sniper, {"model": {"name": model, "kwargs": {**sniper.model_kwargs, **kwargs}, "num_classes": 0},
                                                  "classes": [], "preprocessing": None})
    with pytest.raises(UserError, match="cannot be built") as caught:
        load_sniper(tmp_path / "sniper")
    assert "\n" not in str(caught.value)


def test_stability_reads_the_mlp_history_only_when_val_kept_the_mlp(tmp_path):
    """An index sniper trained no epochs: the MLP's history is not its own, so stability is N/A."""
    import polars as pl

    from geolocate.models.sniper import NeighbourSniper, SniperRegressor
    from geolocate.scout.evaluate import _val_history

    pl.DataFrame({"epoch": [1, 2, 3], "val_median_km": [3.0, 2.0, 2.5]}).write_csv(tmp_path / "sniper-metrics.csv")
    assert _val_history(tmp_path, SniperRegressor(8, 3)) == [3.0, 2.0, 2.5]
    index = NeighbourSniper.__new__(NeighbourSniper)  # its buffers do not matter here, only what it is
    assert _val_history(tmp_path, index) is None


def test_the_four_view_evaluation_holds_val_out_of_an_index_sniper_that_took_it_in(tmp_path):
    """`scout.evaluate` measures val with the sniper searching its train rows (val would find
    itself: zero error), test with the whole index."""
    from types import SimpleNamespace

    from geolocate.scout.evaluate import _split_metrics
    from geolocate.train.sniper import with_val

    train, val = _two_towns(40, 0, looks=True, sure=0.5), _two_towns(20, 1, looks=True, sure=0.5)
    joined = with_val(NeighbourSniper.of(train.features, train.truth, k=1), train, val)
    out = {"logits": np.zeros((len(val), 2)), "fused": val.features, "labels": val.labels.numpy(),
           "latlon": val.truth.numpy(), "ids": [str(i) for i in range(len(val))]}
    ctx = SimpleNamespace(root=tmp_path, outputs={"scout-clip": {"val": out, "test": out}}, tta_outputs={})
    bundle = {"scouts": ["scout-clip"], "weights": [1.0]}
    centroids = np.array([[44.60, -1.20], [44.70, -1.20]])
    _, measured_val = _split_metrics(ctx, bundle, "val", centroids, joined)
    _, measured_test = _split_metrics(ctx, bundle, "test", centroids, joined)
    train_only = sniper_positions(NeighbourSniper.of(train.features, train.truth, k=1), val).numpy()
    assert np.allclose(measured_val.scored.pred_latlon, train_only) and measured_val.scored.err_km.min() > 0
    assert np.allclose(measured_test.scored.err_km, 0.0, atol=1e-9)  # test searches everything: here, itself
