"""A four-view release is a signed whole.

- `freeze` of a scout-sniper run writes `SHA256SUMS` over the release (`artifacts.freeze`), and
  the four-view predictor checks the bundle and every phase checkpoint against it before it
  parses any: a changed byte, a removed file, a file turned into a link is refused in one line
  naming the file, and nothing is loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geolocate.scout.bundle import BUNDLE_NAME
from tests.scout.test_scout_predict import _views, scout_run  # noqa: F401 - the tiny scout-sniper fixture

P = ("--profile", "tiny-scout-sniper")
TAG = "ss-signed"


@pytest.fixture(scope="module")
def release(scout_run):  # noqa: F811
    """The tiny scout-sniper run frozen as releases/ss-signed: (project, release, a north view to predict)."""
    from typer.testing import CliRunner

    from geolocate.cli import app
    from geolocate.ops.demo import working_directory

    project, run = scout_run
    with working_directory(project):
        result = CliRunner().invoke(app, ["freeze", *P, "--run", str(run), "--tag", TAG, "--force", "--no-tag"],
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return project, project / "releases" / TAG, _views(project, 1)[0]["north"]


def _copy(release_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "releases" / TAG
    shutil.copytree(release_dir, target, symlinks=True)
    return target


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _linked(path: Path) -> None:
    elsewhere = path.parent.parent / f"elsewhere-{path.name}"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)


TAMPERED = {
    "scout-clip.safetensors": _flip_one_byte,
    "scout-convnext.safetensors": _flip_one_byte,
    "sniper.safetensors": _flip_one_byte,
    "scout-clip.json": _flip_one_byte,
    BUNDLE_NAME: _flip_one_byte,
    "sniper.json": lambda p: p.unlink(),  # listed in SHA256SUMS, gone
    "scout-convnext.json": _linked,
}


def _nothing_loads(monkeypatch) -> None:
    def loaded(*args, **kwargs):
        raise AssertionError("a file of a tampered release was parsed")

    monkeypatch.setattr("geolocate.artifacts.checkpoint.load_checkpoint", loaded)
    monkeypatch.setattr("geolocate.scout.bundle.read_bundle", loaded)


@pytest.mark.slow
def test_a_frozen_four_view_release_lists_its_files_and_predicts(release, cli, tmp_path, monkeypatch):
    from geolocate.artifacts.digest import parse_sha256sums

    project, frozen, north = release
    listed = parse_sha256sums((frozen / "SHA256SUMS").read_text())
    assert {BUNDLE_NAME, "scout-clip.json", "scout-clip.safetensors", "sniper.json", "sniper.safetensors"} <= set(listed)
    monkeypatch.chdir(project)
    result = cli("predict", *P, "--checkpoint", _copy(frozen, tmp_path), "--north", north, "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["predictions"]) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", TAMPERED)
def test_a_four_view_release_changed_after_freezing_is_refused_before_loading(name, release, cli, tmp_path, monkeypatch):
    project, frozen, north = release
    copy = _copy(frozen, tmp_path)
    TAMPERED[name](copy / name)
    _nothing_loads(monkeypatch)
    monkeypatch.chdir(project)
    result = cli("predict", *P, "--checkpoint", copy, "--north", north)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in result.output, result.stderr

