"""The CLI as a new user meets it, at 80 columns: --version, --help, one-line errors, stdout vs stderr."""

from __future__ import annotations

import re

import pytest

COLUMNS_80 = {"COLUMNS": "80", "TERM": "dumb"}


def _flat(text: str) -> str:
    """Help text as one line: panel borders and line breaks removed."""
    return " ".join(text.replace("│", " ").split())


def test_version_prints_the_version(cli):
    from geolocate import __version__

    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"geolocate {__version__}"


@pytest.mark.parametrize("command", ["evaluate", "predict", "freeze", "synth"])
def test_help_fits_80_columns_without_bool_placeholders(cli, command):
    result = cli(command, "--help", env=COLUMNS_80)
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout  # a flag takes no value
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_help_defaults_show_values_not_just_keys(cli):
    text = _flat(cli("predict", "--help", env=COLUMNS_80).stdout)
    assert "default: 5, from predict.top" in text
    synth = _flat(cli("synth", "--help", env=COLUMNS_80).stdout)
    assert re.search(r"default: \d+, from synth\.n_photos", synth)


def test_freeze_help_says_which_repository_it_tags_and_offers_no_tag(cli):
    text = _flat(cli("freeze", "--help", env=COLUMNS_80).stdout)
    assert "--no-tag" in text and "git repository containing the current directory" in text


def test_set_typo_is_blamed_on_set_not_the_file(cli, workdir):
    for item, expected in (("train.epoch=3", "did you mean 'train.epochs'"), ("trian.epochs=3", "did you mean 'train.epochs'")):
        result = cli("config", "--set", item)
        assert result.exit_code == 2
        assert result.stderr.startswith("error: --set: unknown key") and expected in result.stderr
        assert "config.toml" not in result.stderr
    bad = cli("config", "--set", "train.epochs=abc")
    assert bad.stderr.startswith("error: --set: bad value for 'train.epochs'")


def test_config_explain_gives_values_and_types(cli, workdir):
    result = cli("config", "--explain", "--profile", "tiny")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "train.epochs = 6 (int): Maximum epochs." in lines
    assert any(line.startswith('fetch.catalog = "fr" ("fr" or "us"): ') for line in lines)
    assert any(line.startswith("model.weights = null (path or none): ") for line in lines)


def test_city_of_the_other_catalog_says_which_flag(cli, workdir):
    result = cli("fetch", "--city", "Denver")
    assert result.exit_code == 2
    assert "it is in the us catalog: add --catalog us" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_kpi_results_go_to_stdout(cli, workdir):
    from datetime import datetime, timezone

    from geolocate.cells.kpi import append_kpi_history
    from geolocate.paths import DataPaths

    data = DataPaths(workdir / "data")
    for i, photos in enumerate((1000, 2500)):
        append_kpi_history(data, {"timestamp": datetime(2026, 11, 20 + i, tzinfo=timezone.utc), "batches": "01",
                                  "photos": photos, "classes": 5, "min_per_cell": 150, "median_per_cell": 180.0,
                                  "max_per_cell": 400, "top_class_share": 0.2})
    result = cli("kpi", env=COLUMNS_80)
    assert result.exit_code == 0
    assert "KPI history" in result.stdout and "2,500" in result.stdout
    assert "KPI history" not in result.stderr


def test_device_option_is_checked_and_offered(cli, workdir):
    bad = cli("train", "--device", "gpu")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --device 'gpu': choose auto, cpu, cuda")
    assert "--device" in cli("predict", "--help", env=COLUMNS_80).stdout
    from geolocate.config import load_config

    cfg = load_config(None, None, ["train.device=cuda:1", "predict.device=mps"])
    assert (cfg.train.device, cfg.predict.device) == ("cuda:1", "mps")


def test_asking_for_a_missing_gpu_is_one_line(monkeypatch):
    import torch

    from geolocate.errors import UserError
    from geolocate.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(UserError, match="no CUDA GPU"):
        resolve_device("cuda:0")
