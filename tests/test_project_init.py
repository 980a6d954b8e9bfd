"""`geolocate init` and `geolocate config set`: a project's config.toml that sticks, checked and commented."""

from __future__ import annotations

import json
import textwrap
import tomllib
from pathlib import Path

import pytest

from geolocate.config import GeolocateConfig, config_keys, load_config, packaged_config_path
from geolocate.errors import UserError
from geolocate.ops.project import init_project, set_config_key

V1_EFFNET = ["model.name=efficientnet_lite0", "split.test=0.2"]


def _resolved(cfg) -> dict:
    return cfg.model_dump(mode="json", exclude={"source"})


@pytest.mark.parametrize("profile, sets", [(None, []), ("v1", V1_EFFNET), ("tiny", ["train.epochs=2"]), ("scout-sniper", [])])
def test_the_written_file_reads_back_as_the_resolved_config(tmp_path, profile, sets):
    result = init_project(tmp_path / "p", profile, sets)
    assert _resolved(load_config(result.config)) == _resolved(load_config(packaged_config_path(), profile, sets))
    assert load_config(result.config).profile == profile  # recorded: runs and reports keep naming it


def test_every_key_is_written_under_its_description(tmp_path):
    """Generated from the models: a field added to config.py appears, described, with no edit here."""
    lines = init_project(tmp_path, "v1").config.read_text(encoding="utf-8").splitlines()
    for key in config_keys():
        *tables, leaf = key.split(".")
        model = GeolocateConfig
        for part in tables:
            model = model.model_fields[part].annotation
        table_at = lines.index(f"[{'.'.join(tables)}]  # " + _description(key.rpartition(".")[0])) if tables else 0
        at = next(i for i, line in enumerate(lines[table_at:], table_at) if line.startswith((f"{leaf} = ", f"# {leaf} =  (unset)")))
        start = at
        while lines[start - 1].startswith("# ") and not lines[start - 1].endswith("=  (unset)"):
            start -= 1
        assert lines[start:at] == [f"# {line}" for line in textwrap.wrap(model.model_fields[leaf].description, 98)], key


def _description(table: str) -> str:
    model, field = GeolocateConfig, None
    for part in table.split("."):
        field = model.model_fields[part]
        model = field.annotation
    return field.description


def test_profile_and_set_keys_are_marked(tmp_path):
    text = init_project(tmp_path, "v1", V1_EFFNET).config.read_text(encoding="utf-8")
    assert 'name = "efficientnet_lite0"  # --set' in text
    assert 'catalog = "fr"  # profile v1' in text
    assert "geolocate init --profile v1 --set model.name=efficientnet_lite0" in text
    assert "\ntimeout_s = 30.0\n" in text  # a default: no mark


def test_gitignore_lists_generated_directories_but_not_releases(tmp_path):
    (tmp_path / ".gitignore").write_text("*.pyc\n/data/\n")
    result = init_project(tmp_path)
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["*.pyc", "/data/"]  # kept, and /data/ not added twice
    assert result.ignored == ["/runs/", "/models/", "/exports/"]
    assert lines.count("/data/") == 1 and not any(line.strip("/") == "releases" for line in lines)


def test_init_refuses_to_overwrite_in_one_line(cli, workdir):
    (workdir / "config.toml").write_text("# mine\n")
    result = cli("init")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "config set" in lines[0]
    assert (workdir / "config.toml").read_text() == "# mine\n"


def test_init_bad_set_writes_nothing(cli, workdir):
    result = cli("init", "p", "--set", "train.epoch=3")
    assert result.exit_code == 2 and "did you mean 'train.epochs'" in result.output
    assert not (workdir / "p" / "config.toml").exists()


def test_commands_inside_the_project_use_its_file(cli, workdir, monkeypatch):
    assert cli("init", "p", "--profile", "v1", "--set", "train.epochs=4").exit_code == 0
    monkeypatch.chdir(workdir / "p")
    data = json.loads(cli("config", "--json").stdout)
    assert data["train"]["epochs"] == 4 and data["profile"] == "v1" and data["source"].endswith("p/config.toml")
    # a project file has no [profiles]: geolocate's still merge over it when asked
    tiny = json.loads(cli("config", "--profile", "tiny", "--json").stdout)
    assert tiny["model"]["name"] == "tiny_resnet" and tiny["profile"] == "tiny"


def test_config_set_edits_validates_and_keeps_comments(cli, workdir, monkeypatch):
    cli("init", "p", "--profile", "v1")
    monkeypatch.chdir(workdir / "p")
    path = Path("config.toml")
    path.write_text(path.read_text().replace("[train]", "# my own note\n[train]"))
    result = cli("config", "set", "train.epochs", "3")
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert "# my own note" in text and "# Maximum epochs.\nepochs = 3  # config set\n" in text
    assert load_config(path).train.epochs == 3
    assert json.loads(cli("config", "show", "--json").stdout)["train"]["epochs"] == 3


@pytest.mark.parametrize("key, value, message", [
    ("train.epoch", "3", "did you mean 'train.epochs'"),
    ("trian.epochs", "3", "did you mean 'train.epochs'"),
    ("train.epochs", "0", "train.epochs"),
    ("train", "3", "e.g. train.epochs"),
    ("cells.sparse", "bogus", "merge-parent"),
    ("profile", "tiny", "--profile"),
])
def test_config_set_mistakes_are_one_line_and_change_nothing(cli, workdir, key, value, message):
    cli("init")
    before = (workdir / "config.toml").read_text()
    result = cli("config", "set", key, value)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output
    assert (workdir / "config.toml").read_text() == before
    assert sorted(p.name for p in workdir.iterdir()) == [".gitignore", "config.toml"]  # no temporary left


def test_config_set_needs_a_project(cli, workdir):
    result = cli("config", "set", "train.epochs", "3")
    assert result.exit_code == 2 and "geolocate init" in result.output
    assert not (workdir / "config.toml").exists()


def test_config_set_creates_a_missing_table_and_rescales_split_shares(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("version = 2\n[train]\nepochs = 2  # mine\n")
    set_config_key(path, "eval.gates.absolute", "true")
    old, new = set_config_key(path, "split.test", "0.2")
    raw = tomllib.loads(path.read_text())
    assert raw["eval"]["gates"]["absolute"] is True and (old, new) == (0.1, 0.2)
    assert raw["split"]["train"] + raw["split"]["val"] + raw["split"]["test"] == pytest.approx(1.0)
    assert "epochs = 2  # mine" in path.read_text()


def test_the_packaged_defaults_are_never_edited():
    with pytest.raises(UserError, match="packaged defaults"):
        set_config_key(packaged_config_path(), "train.epochs", "3")


def test_a_file_given_at_init_is_found_from_inside_the_project(cli, workdir, monkeypatch):
    (workdir / "w.safetensors").write_bytes(b"")
    assert cli("init", "p", "--set", "model.weights=w.safetensors", "--set", "paths.data=mydata").exit_code == 0
    monkeypatch.chdir(workdir / "p")
    data = json.loads(cli("config", "--json").stdout)
    assert (Path.cwd() / data["model"]["weights"]).resolve() == (workdir / "w.safetensors").resolve()
    assert data["paths"]["data"] == "mydata"  # the project's own directories stay relative to it
    assert "/mydata/" in Path(".gitignore").read_text().splitlines()


REAL_EXIF = next((p / "shared/real-photos/exif" for p in Path(__file__).resolve().parents
                  if (p / "shared/real-photos/exif").is_dir()), Path("shared/real-photos/exif"))


@pytest.mark.skipif(not REAL_EXIF.is_dir(), reason="the shared real photos are not on this machine")
def test_settings_given_once_at_init_stick_for_every_stage(cli, workdir, monkeypatch):
    """Issue 19's first complaint: the small-data settings had to be repeated on every command."""
    small = ["data.max_size=64", "cells.resolution=3", "cells.min_samples=1", "split.train=0.5", "split.val=0.25", "split.test=0.25"]
    assert cli("init", "p", *[arg for kv in small for arg in ("--set", kv)]).exit_code == 0
    monkeypatch.chdir(workdir / "p")
    for step in (["import", str(REAL_EXIF)], ["prepare"], ["cells"], ["split"], ["sanity"]):
        result = cli(*step)  # no --set, no --res
        assert result.exit_code == 0, (step, result.output)
    import h3
    import polars as pl

    cells = pl.read_parquet(workdir / "p" / "data" / "cells.parquet")
    assert cells.height and {h3.get_resolution(c) for c in cells["cell_id"]} <= {0, 1, 2, 3}  # res 3 (or a merged parent), not 7


def test_a_newline_in_a_value_cannot_escape_the_header_comment(tmp_path):
    result = init_project(tmp_path, None, ["local.license=CC0\nfetch.api_url = 'http://evil.example'"])
    cfg = load_config(result.config)
    assert cfg.fetch.api_url == "https://graph.mapillary.com" and cfg.local.license.startswith("CC0\n")
