"""The second scout's weights: errors name the second scout's keys, and offline fails at once."""

from __future__ import annotations

import time

import pytest

from geolocate.config import load_config
from geolocate.errors import UserError
from geolocate.scout.context import build_scout


def _second_scout(workdir, *sets: str):
    cfg = load_config(None, "tiny-scout-sniper", list(sets))
    return build_scout(cfg, "scout-convnext", num_classes=3)


def test_a_missing_second_weights_file_names_scout_second_weights(workdir):
    with pytest.raises(UserError) as info:
        _second_scout(workdir, f"scout.second_weights='{workdir / 'nope.safetensors'}'")
    assert "scout.second_weights" in str(info.value)
    assert "model.weights" not in str(info.value)


def test_offline_second_scout_fails_at_once_naming_its_own_keys(workdir, no_network):
    started = time.perf_counter()
    with pytest.raises(UserError) as info:
        _second_scout(workdir, "scout.second_model='resnet18'", "model.pretrained=true")
    assert time.perf_counter() - started < 20
    message = str(info.value)
    assert "cannot be reached" in message and "--set scout.second_weights=FILE" in message
    assert "model.weights" not in message and "--set model.name=" not in message


def test_the_first_scout_keeps_its_own_keys(workdir):
    cfg = load_config(None, "tiny-scout-sniper", [f"model.weights='{workdir / 'nope.safetensors'}'"])
    with pytest.raises(UserError, match="model.weights"):
        build_scout(cfg, "scout-clip", num_classes=3)
