"""`geolocate freeze`: gates decide, --force is recorded, releases are complete and immutable."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from geolocate.artifacts.checkpoint import load_checkpoint
from geolocate.artifacts.digest import verify_sha256sums
from geolocate.artifacts.freeze import run_freeze
from geolocate.artifacts.verify import verify_export
from geolocate.errors import UserError

RELEASE_FILES = ["RELEASE.json", "REPORT.md", "SHA256SUMS", "cells.parquet", "config.json", "confusion_matrix.png",
                 "error_map.png", "geo_error.png", "metrics.json", "model.json", "model.safetensors"]


def test_failing_gates_are_refused(populated, cfg, set_gates):
    project, run = populated
    set_gates(run, passed=False)
    with pytest.raises(UserError, match=r"did not pass its gates \(median_km FAIL\).*--force"):
        run_freeze(cfg, project, "latest", "v1.0")
    assert not project.releases.exists() and not project.exports.exists()


def test_unevaluated_run_is_refused(populated, cfg):
    project, run = populated
    run.metrics_json.unlink()
    with pytest.raises(UserError, match="evaluate it first"):
        run_freeze(cfg, project, "latest", "v1.0")


def test_force_freezes_a_failing_run_and_records_it(populated, cfg, set_gates):
    project, run = populated
    set_gates(run, passed=False)
    result = run_freeze(cfg, project, "latest", "v1.0", force=True)
    record = json.loads((result.release / "RELEASE.json").read_text())
    assert result.forced and record["forced"] is True and record["failing_gates"] == ["median_km"]


def test_passing_run_becomes_a_complete_release(populated, cfg, make_model, factory):
    project, run = populated
    result = run_freeze(cfg, project, run.run_id, "V1.0")
    assert result.release == project.releases / "v1.0" and not result.forced
    assert sorted(p.name for p in result.release.iterdir()) == RELEASE_FILES
    assert verify_sha256sums(result.release) == []
    record = json.loads((result.release / "RELEASE.json").read_text())
    assert (record["tag"], record["run_id"], record["forced"], record["failing_gates"]) == ("v1.0", run.run_id, False, [])
    assert record["cells_source"] == "data/cells.parquet"
    assert verify_export(result.export) == [] and record["export"]["file"] == result.export.name
    model, sidecar = load_checkpoint(project.releases / "v1.0", project, factory=factory)
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(model(x), make_model(seed=11)(x)) and sidecar["run_id"] == run.run_id
    assert result.git.status == "skipped"
    assert not [p for p in project.releases.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_release_tag_is_never_overwritten(populated, cfg):
    project, _ = populated
    run_freeze(cfg, project, "latest", "v1.0")
    before = (project.releases / "v1.0" / "RELEASE.json").read_text()
    with pytest.raises(UserError, match="already exists"):
        run_freeze(cfg, project, "latest", "v1.0", force=True)
    assert (project.releases / "v1.0" / "RELEASE.json").read_text() == before


def test_cells_rebuilt_from_the_checkpoint_when_the_data_moved_on(populated, cfg):
    import polars as pl

    project, _ = populated
    pl.read_parquet(project.data.cells).head(2).write_parquet(project.data.cells)  # a later `cells` run
    result = run_freeze(cfg, project, "latest", "v1.0")
    cells = pl.read_parquet(result.release / "cells.parquet")
    assert cells["cell_id"].to_list() == [c["cell_id"] for c in json.loads((result.release / "model.json").read_text())["classes"]]
    assert json.loads((result.release / "RELEASE.json").read_text())["cells_source"] == "checkpoint classes"


def _git(root, *args):
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def git_project(populated, monkeypatch):
    project, run = populated
    root = project.data_root.parent
    for key, value in {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "T",
                       "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(key, value)
    _git(root, "init", "-q")
    (root / "README").write_text("project\n")
    _git(root, "add", "README")
    _git(root, "commit", "-q", "-m", "first")
    return project, run, root


def test_freeze_creates_an_annotated_git_tag(git_project, cfg):
    project, run, root = git_project
    result = run_freeze(cfg, project, "latest", "v1.0", repo_dir=root)
    assert result.git.status == "created"
    assert _git(root, "cat-file", "-t", "v1.0") == "tag"  # annotated, not lightweight
    assert run.run_id in _git(root, "tag", "-n1", "v1.0")
    record = json.loads((result.release / "RELEASE.json").read_text())
    assert record["git_commit"] == _git(root, "rev-parse", "HEAD")


def test_existing_git_tag_is_reported_not_fatal(git_project, cfg):
    project, _, root = git_project
    _git(root, "tag", "v2.0")
    result = run_freeze(cfg, project, "latest", "v2.0", repo_dir=root)
    assert result.git.status == "exists" and (project.releases / "v2.0" / "model.json").is_file()


def test_cli_freeze_then_predict_path_resolves(populated, cli, monkeypatch, set_gates):
    project, run = populated
    monkeypatch.chdir(project.data_root.parent)
    set_gates(run, passed=False)
    refused = cli("freeze", "--tag", "v1.0")
    assert refused.exit_code == 2 and "--force" in refused.output
    forced = cli("freeze", "--tag", "v1.0", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["forced"] is True
    from geolocate.artifacts.resolve import resolve_checkpoint

    assert resolve_checkpoint("releases/v1.0").as_posix() == "releases/v1.0/model"


def test_no_tag_leaves_git_alone(git_project, cfg):
    project, _, root = git_project
    result = run_freeze(cfg, project, "latest", "v3.0", repo_dir=root, git_tag=False)
    assert result.git.status == "skipped" and "--no-tag" in result.git.detail
    assert _git(root, "tag", "-l") == ""


def test_a_verdict_under_another_profile_is_refused(populated, cfg):
    project, run = populated
    metrics = json.loads(run.metrics_json.read_text())
    metrics["judged_with"] = {"own": False, "profile": "v1", "run_profile": "tiny"}
    run.metrics_json.write_text(json.dumps(metrics))
    with pytest.raises(UserError, match=r"evaluated with profile 'v1', not its own \('tiny'\).*geolocate evaluate --run"):
        run_freeze(cfg, project, "latest", "v1.0")


def test_the_release_and_the_tag_carry_the_export_digest(git_project, cfg):
    """The trust anchor: the archive's SHA-256, kept where a tamperer of the archive cannot reach."""
    from geolocate.artifacts.digest import sha256_file

    project, _, root = git_project
    result = run_freeze(cfg, project, "latest", "v3.0", repo_dir=root)
    digest = sha256_file(result.export)
    assert result.export_sha256 == digest
    assert json.loads((result.release / "RELEASE.json").read_text())["export"]["sha256"] == digest
    assert digest in _git(root, "tag", "-n9", "v3.0")


@pytest.mark.parametrize("member", ["REPORT.md", "metrics.json", "geo_error.png"])
def test_freeze_force_never_copies_a_link_target(populated, cfg, tmp_path, member):
    project, run = populated
    secret = tmp_path / "secret.txt"
    secret.write_text("the content of a private file\n")
    (run.root / member).unlink()
    (run.root / member).symlink_to(secret)
    with pytest.raises(UserError, match=f"{member}.*symbolic link"):
        run_freeze(cfg, project, "latest", "v9", force=True)
    assert not (project.releases / "v9").exists()
    shipped = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink() and p != secret]
    assert not any(b"private file" in p.read_bytes() for p in shipped)


def test_a_model_no_better_than_always_guessing_the_majority_class_is_refused(populated, cfg):
    """The area's own bar: a fine-looking median that the majority class matches is not a result."""
    from geolocate.config import GatesConfig
    from geolocate.evaluate.gates import all_pass, evaluate_gates

    project, run = populated
    model = {"acc_top1": 0.26, "median_km": 2.86, "p90_km": 16.0}
    baselines = {"majority": {"median_km": 2.01, "p90_km": 16.4}, "centroid": {"median_km": 3.5, "p90_km": 9.8}}
    gates = evaluate_gates(model, 0.1, GatesConfig(), baselines)
    run.metrics_json.write_text(json.dumps({"gates": [g.as_dict() for g in gates], "gates_pass": all_pass(gates)}))
    with pytest.raises(UserError, match=r"\(beats_trivial_median_km, beats_trivial_p90_km FAIL\)"):
        run_freeze(cfg, project, "latest", "v1.0")
