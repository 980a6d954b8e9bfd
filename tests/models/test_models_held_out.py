"""One switch keeps val out of every index that took it in: vote heads and both index snipers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geolocate.evaluate.retrieval_sniper import RetrievalSniper
from geolocate.models.held_out import TrainRowsIndex, held_out
from geolocate.models.sniper import NeighbourSniper
from geolocate.models.votes import VoteClassifier


def _indexes() -> nn.ModuleDict:
    features, latlon, labels = torch.eye(4), torch.zeros(4, 2, dtype=torch.float64), torch.tensor([0, 1, 0, 1])
    setting = {"top_cells": 1, "neighbours": 1, "method": "cluster"}
    return nn.ModuleDict({
        "votes": VoteClassifier.of(nn.Linear(4, 2), features, labels, k=1, alpha=1.0, train_size=2),
        "neighbours": NeighbourSniper.of(features, latlon, k=1, train_size=2),
        "retrieval": RetrievalSniper.of(features, latlon, labels, setting, train_size=2),
        "old": NeighbourSniper.of(features, latlon, k=1),  # a checkpoint from before val joined: all rows train's
    })


def test_one_block_holds_every_kind_of_index_to_its_train_rows_and_gives_the_state_back():
    model = _indexes()
    rows = torch.arange(4)
    with pytest.raises(RuntimeError):
        with held_out(model):
            assert [len(m.searchable(rows)[0]) for m in model.values()] == [2, 2, 2, 4]
            raise RuntimeError("a failing evaluation")
    assert all(isinstance(m, TrainRowsIndex) and not m.held_out for m in model.values())
    assert [len(m.searchable(rows)[0]) for m in model.values()] == [4, 4, 4, 4]


def test_a_val_query_finds_itself_only_outside_the_block():
    votes = _indexes()["votes"]
    val_query = torch.tensor([[0.2, 0.0, 0.0, 1.0]])  # val row 3 (class 1) itself, a little like train row 0 (class 0)
    assert votes(val_query).argmax().item() == 1
    with held_out(votes):
        assert votes(val_query).argmax().item() == 0  # only the train rows answer
