"""A four-view release is a signed whole, and a four-view bundle says only what it may.

- `freeze` of a scout-sniper run writes `SHA256SUMS` over the release (`artifacts.freeze`), and
  the four-view predictor checks the bundle and every phase checkpoint against it before it
  parses any: a changed byte, a removed file, a file turned into a link is refused in one line
  naming the file, and nothing is loaded.
- `scout_sniper.json` is validated each time it is read (`scout.bundle_schema`): phase names are
  the known ones (they become file names), weights finite and one per scout, the position mode
  known and its top-k within 1..1000, the radius table well formed. A hostile bundle is one line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geolocate.errors import UserError
from geolocate.scout.bundle import BUNDLE_NAME, read_bundle
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


GOOD = {"format": "geolocate.scout_sniper", "version": 1, "scouts": ["scout-clip", "scout-convnext"], "weights": [0.7, 1.1],
        "sniper": "sniper", "position": "weighted", "position_topk": 5, "heads": {"scout-clip": [{"head": "probe"}]},
        "radius": {"level": 0.9, "edges": [0.4, 0.7], "radius_km": [900.0, None, 40.0], "n_val": 60}}
HOSTILE = {
    "weights-a-string": {"weights": "0.7"},
    "weights-nan": {"weights": [float("nan"), 1.0]},
    "weights-inf": {"weights": [float("inf"), 1.0]},
    "weights-negative": {"weights": [-1.0, 1.0]},
    "weights-huge": {"weights": [1e300, 1.0]},
    "weights-a-bool": {"weights": [True, 1.0]},
    "weights-one-short": {"weights": [1.0]},
    "scouts-unknown-phase": {"scouts": ["scout-clip", "../../outside/secret"]},
    "scouts-the-sniper": {"scouts": ["sniper"], "weights": [1.0]},
    "scouts-twice": {"scouts": ["scout-clip", "scout-clip"]},
    "scouts-a-string": {"scouts": "scout-clip"},
    "sniper-renamed": {"sniper": "../sniper"},
    "position-unknown": {"position": "centroid"},
    "position-topk-huge": {"position_topk": 10**9},
    "position-topk-zero": {"position_topk": 0},
    "position-topk-float": {"position_topk": 2.5},
    "radius-bands": {"radius": {"level": 0.9, "edges": [0.4], "radius_km": [1.0]}},
    "radius-nan": {"radius": {"level": 0.9, "edges": [], "radius_km": [float("nan")]}},
    "format-other": {"format": "geolocate.checkpoint"},
}


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUNDLE_NAME).write_text(text)
    return folder


def test_a_valid_bundle_reads_as_it_is(tmp_path):
    assert read_bundle(_write(tmp_path, json.dumps(GOOD))) == GOOD


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_bundle_is_one_line_naming_its_field(name, tmp_path):
    change = HOSTILE[name]
    with pytest.raises(UserError) as refused:
        read_bundle(_write(tmp_path, json.dumps({**GOOD, **change})))  # NaN and Infinity as Python's json writes them
    message = str(refused.value)
    assert "\n" not in message and BUNDLE_NAME in message
    assert next(iter(change)) in message or "weight per scout" in message or "named once" in message, message


@pytest.mark.parametrize("text", ["[1, 2]", "{", "[" * 100_000, '{"format": "geolocate.scout_sniper", "scouts": ["scout-clip"]', "\udcff"])
def test_a_bundle_that_is_no_json_object_is_one_line(text, tmp_path):
    path = tmp_path / BUNDLE_NAME
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(UserError, match="not a (readable )?scout-sniper bundle"):
        read_bundle(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["weights-a-string", "scouts-unknown-phase", "position-topk-huge", "weights-nan"])
def test_predict_with_a_hostile_bundle_says_so_in_one_line(name, scout_run, cli, tmp_path, monkeypatch):  # noqa: F811
    """A run (not a release: no digests stand in front of the bundle) whose bundle was edited."""
    project, run = scout_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    bundle = json.loads((copy / BUNDLE_NAME).read_text())
    (copy / BUNDLE_NAME).write_text(json.dumps({**bundle, **HOSTILE[name]}))
    monkeypatch.chdir(project)
    result = cli("predict", *P, "--checkpoint", copy, "--north", _views(project, 1)[0]["north"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad bundle" in lines[0], result.stderr


def test_a_config_cannot_ask_for_a_top_k_a_bundle_would_refuse():
    """Training writes `eval.weighted_topk` into the bundle: the config refuses it first, not the next read."""
    from geolocate.config import load_config

    assert load_config(None, None, ["eval.weighted_topk=1000"]).eval.weighted_topk == 1000
    with pytest.raises(UserError, match="weighted_topk"):
        load_config(None, None, ["eval.weighted_topk=1001"])


class _Payload:
    """Unpickling this runs `touch PWNED`: what a pickled checkpoint can do when it is trusted."""

    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["scout-clip", "sniper"])
def test_a_pickled_phase_checkpoint_is_never_unpickled(phase, scout_run, cli, tmp_path, monkeypatch):  # noqa: F811
    """A phase is complete only with its safetensors, which `load_checkpoint` prefers to any pickle beside it."""
    import pickle

    project, run = scout_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    (copy / f"{phase}.pt").write_bytes(pickle.dumps({"weights": _Payload()}))
    monkeypatch.chdir(tmp_path)
    argv = ["predict", *P, "--checkpoint", copy, "--north", _views(project, 1)[0]["north"]]
    assert cli(*argv).exit_code == 0  # the safetensors beside it answered
    (copy / f"{phase}.safetensors").unlink()
    result = cli(*argv)
    assert result.exit_code == 2 and f"no {phase} yet" in result.stderr, result.output
    assert not (tmp_path / "PWNED").exists() and not (project / "PWNED").exists()
