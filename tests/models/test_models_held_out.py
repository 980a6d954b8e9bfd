"""Heads that take val in once it has chosen, and answer val as they did on train alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geolocate.models.held_out import RefitLinear, held_out
from geolocate.models.multiview import FusionHead


def _pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 4, generator=gen), torch.randn(3, generator=gen)


def test_a_refit_head_answers_with_its_refit_and_held_out_with_its_train_only_fit():
    train_only, refit = _pair(0), _pair(1)
    head = RefitLinear.of(train_only, refit)
    x = torch.randn(5, 4)
    assert torch.allclose(head(x), x @ refit[0].T + refit[1])
    with held_out(nn.Sequential(nn.Identity(), head)):
        assert torch.allclose(head(x), x @ train_only[0].T + train_only[1])
    assert not head.held_out and torch.allclose(head(x), x @ refit[0].T + refit[1])


def test_a_refit_head_survives_its_checkpoint_and_stays_a_plain_linear_layer_to_its_readers():
    head = RefitLinear.of(_pair(0), _pair(1))
    fusion = FusionHead(4, 3, kind="probe", refit=True)  # what a checkpoint with `refit` rebuilds
    fusion.classifier.load_state_dict(head.state_dict())
    assert fusion.model_kwargs["refit"] is True and isinstance(fusion.classifier, nn.Linear)
    x = torch.randn(2, 4)
    with held_out(fusion):
        assert torch.allclose(fusion.classifier(x), x @ _pair(0)[0].T + _pair(0)[1])


def test_a_held_out_block_restores_the_heads_when_it_fails():
    head = RefitLinear.of(_pair(0), _pair(1))
    with pytest.raises(RuntimeError), held_out(head):
        raise RuntimeError("evaluation failed")
    assert not head.held_out
