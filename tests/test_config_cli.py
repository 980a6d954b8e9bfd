"""The config surface: profiles, --set precedence, one-line errors, no torch on import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from geolocate.config import load_config, parse_override
from geolocate.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_packaged_defaults_match_repository_config():
    assert (ROOT / "config.toml").read_text() == (ROOT / "geolocate" / "defaults" / "config.toml").read_text()


@pytest.mark.parametrize("profile", ["v1", "scout-sniper", "tiny", "tiny-scout-sniper"])
def test_every_profile_validates(profile):
    cfg = load_config(ROOT / "config.toml", profile)
    assert cfg.profile == profile


def test_precedence_set_over_profile_over_base():
    base = load_config(ROOT / "config.toml")
    tiny = load_config(ROOT / "config.toml", "tiny")
    both = load_config(ROOT / "config.toml", "tiny", ["train.epochs=2"])
    assert base.train.epochs == 30 and tiny.train.epochs == 6 and both.train.epochs == 2
    assert tiny.train.weight_decay == base.train.weight_decay  # deep merge keeps untouched keys


@pytest.mark.parametrize(
    "item, expected",
    [
        ("fetch.api_url=http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ('fetch.api_url="http://127.0.0.1:8080"', "http://127.0.0.1:8080"),
        ("train.epochs=3", 3),
        ("fetch.include_panos=true", True),
        ("synth.batches=['01','03']", ["01", "03"]),
    ],
)
def test_override_values_parse_as_toml_else_string(item, expected):
    assert parse_override(item)[1] == expected


def test_unknown_key_suggests_the_closest(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[train]\nepochz = 3\n")
    with pytest.raises(UserError, match=r"unknown key 'train.epochz' \(did you mean 'train.epochs'\?\)"):
        load_config(bad)


def test_bad_value_names_key_value_and_allowed():
    with pytest.raises(UserError, match=r"cells.sparse.*'bogus'.*merge-parent"):
        load_config(ROOT / "config.toml", overrides=["cells.sparse=bogus"])


def test_cli_config_error_is_one_line(cli, workdir):
    result = cli("config", "--set", "train.epochz=3")
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "epochs" in lines[0] and "Traceback" not in result.output


def test_cli_config_json_reflects_set(cli, workdir):
    result = cli("config", "--profile", "v1", "--set", "fetch.api_url=http://127.0.0.1:9", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["fetch"]["api_url"] == "http://127.0.0.1:9" and data["cells"]["resolution"] == 7


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, geolocate.cli; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os
    import stat

    from geolocate import atomic

    target = tmp_path / "x.json"
    atomic.write_json(target, {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary left behind


def test_a_directory_given_as_a_file_is_one_line(cli, workdir):
    for args in (["config", "--config", str(workdir)], ["import-locations", str(workdir)]):
        result = cli(*args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.output
