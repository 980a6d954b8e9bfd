"""The scout-sniper's settings live in its own `[scout]` table; configs and runs of version 2 still load."""

from __future__ import annotations

import pytest

from geolocate import config
from geolocate.config import load_config, validate_config
from geolocate.errors import UserError


def test_the_scout_profiles_fill_the_scout_table(workdir):
    cfg = load_config(None, "tiny-scout-sniper", [])
    assert (cfg.scout.second_model, cfg.scout.sniper_epochs, cfg.scout.sniper_offset_at) == ("tiny_convnext", 40, "true")
    assert load_config(None, "scout-sniper", []).scout.second_model == "convnextv2_large"
    assert "second_scout" not in config.ModelConfig.model_fields and "sniper_epochs" not in config.TrainConfig.model_fields


def test_a_version_2_run_config_is_migrated_into_the_scout_table():
    old = {"version": 2, "model": {"second_scout": "tiny_convnext", "second_weights": "w.safetensors"},
           "train": {"phase": "all", "sniper_epochs": 7, "sniper_offset_at": "predicted"}}
    cfg = validate_config(old, "runs/old/config.json")
    assert (cfg.scout.second_model, str(cfg.scout.second_weights)) == ("tiny_convnext", "w.safetensors")
    assert (cfg.scout.sniper_epochs, cfg.scout.sniper_offset_at, cfg.train.phase) == (7, "predicted", "all")


def test_an_old_key_in_a_current_file_or_set_names_its_new_home(workdir):
    with pytest.raises(UserError, match="'model.second_scout' is now 'scout.second_model'"):
        load_config(None, "tiny-scout-sniper", ["model.second_scout=resnet18"])
    (workdir / "config.toml").write_text("version = 2\n[train]\nsniper_epochs = 3\n[profiles.mine]\nmodel = { second_scout = 'x' }\n")
    cfg = load_config(None, "mine", [])  # a version-2 file, profiles included, is migrated
    assert (cfg.scout.sniper_epochs, cfg.scout.second_model) == (3, "x")
