"""Training state for --resume: optimizer, scheduler, RNG and epoch survive a save/load."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from geolocate.artifacts.state import capture_rng_state, load_state, restore_rng_state, save_state
from geolocate.errors import UserError


def _draws():
    return (random.random(), float(np.random.rand()), float(torch.rand(1)))


def _setup(make_model):
    model = make_model(seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler):
    loss = model(torch.randn(4, 3, 16, 16)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()


def test_resume_continues_exactly_where_it_stopped(tmp_path, make_model):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    model, optimizer, scheduler = _setup(make_model)
    _step(model, optimizer, scheduler)
    save_state(tmp_path / "state.pt", 4, optimizer.state_dict(), scheduler.state_dict(), capture_rng_state(), {"best_km": 2.5})
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    _step(model, optimizer, scheduler)
    expected = (_draws(), model.head.weight.detach().clone())

    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # a new process: other RNG state
    model2, optimizer2, scheduler2 = _setup(make_model)
    model2.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    state = load_state(tmp_path / "state.pt")
    optimizer2.load_state_dict(state["optimizer"])
    scheduler2.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    _step(model2, optimizer2, scheduler2)

    assert state["epoch"] == 4 and state["extra"] == {"best_km": 2.5}
    assert scheduler2.last_epoch == 2
    assert torch.equal(model2.head.weight, expected[1])
    assert _draws() == expected[0]


def test_rng_state_round_trip(tmp_path):
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    save_state(tmp_path / "s.pt", 0, {}, None, capture_rng_state())
    first = _draws()
    restore_rng_state(load_state(tmp_path / "s.pt")["rng"])
    assert _draws() == first


def test_state_with_an_unloadable_value_is_refused_at_save(tmp_path):
    with pytest.raises(TypeError, match=r"state\['extra'\]\['fn'\]"):
        save_state(tmp_path / "s.pt", 0, {}, None, {}, {"fn": lambda: 1})
    assert not (tmp_path / "s.pt").exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_hostile_state_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": "geolocate.train_state", "version": 1, "epoch": _Payload(marker)}, tmp_path / "state.pt")
    with pytest.raises(UserError, match="not a plain training state"):
        load_state(tmp_path / "state.pt")
    assert not marker.exists()


def test_missing_state_says_how_to_start_over(tmp_path):
    with pytest.raises(UserError, match="without --resume"):
        load_state(tmp_path / "state.pt")
