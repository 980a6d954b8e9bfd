"""`geolocate batch 01 --synthetic` from cold, then resume, export, clean-raw, train, freeze, predict.

The tests of this module share one project built by the cold batch, as a new user would type the
commands; each test holds whatever order pytest (or xdist) runs them in.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest

from tests.ops.ops_settings import BATCH_SETS, LOOSE_GATES, options

pytestmark = pytest.mark.slow
STEPS = ["synth", "prepare", "cells", "split", "sanity", "train", "export"]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_batch_runs_every_step_from_cold(batch_project):
    project, _, result = batch_project
    summary = json.loads(result.stdout)
    assert [s["step"] for s in summary["steps"]] == STEPS
    assert {s["status"] for s in summary["steps"]} == {"ran"}
    for name in ("manifest", "cells", "labels", "split", "kpi_history"):
        assert (project / "data" / f"{name}.parquet").is_file()
    assert (project / "runs" / summary["run_id"] / "metrics.json").is_file()
    assert (project / summary["export"]).is_file()
    state = json.loads((project / "data" / "batches" / "01.json").read_text())
    assert sorted(state["steps"]) == sorted(STEPS) and all(s["key"] for s in state["steps"].values())
    # the KPI table and the gates table end the output
    assert "KPI history" in result.stderr and f"gates of run {summary['run_id']}" in result.stderr
    assert summary["kpi_history"][-1]["batches"] == "01" and summary["kpi_history"][-1]["photos"] > 0
    assert not (project / "data" / "kpi_history.png").exists()  # one batch: the table, not a one-dot figure
    assert {g["name"] for g in summary["gates"]} >= {"accuracy", "median_km"} and summary["gates_pass"] is False


def test_second_call_skips_every_step(batch_project):
    project, invoke, first = batch_project
    runs_before = sorted(p.name for p in (project / "runs").iterdir())
    again = invoke("batch", "01", "--synthetic", "--json", *options(BATCH_SETS))
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert [(s["step"], s["status"]) for s in summary["steps"]] == [(name, "skipped") for name in STEPS]
    for name in STEPS:
        assert f"skip {name}: done" in again.stderr
    assert sorted(p.name for p in (project / "runs").iterdir()) == runs_before  # no new training
    assert summary["run_id"] == json.loads(first.stdout)["run_id"]


def test_the_batch_export_verifies(batch_project):
    project, invoke, result = batch_project
    export = json.loads(result.stdout)["export"]
    verified = invoke("export", "--verify", export, "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True


def test_freeze_refuses_the_failing_run(batch_project):
    project, invoke, _ = batch_project
    run_id = json.loads(batch_project[2].stdout)["run_id"]
    refused = invoke("freeze", "--run", run_id, "--tag", "refused")
    message = " ".join(refused.stderr.split())
    assert refused.exit_code == 2 and "did not pass its gates" in message and "median_km" in message
    assert not (project / "releases" / "refused").exists()


def test_clean_raw_frees_only_raw_downloads(batch_project):
    project, invoke, _ = batch_project
    data = project / "data"
    raw = sorted((data / "raw").iterdir())
    assert raw  # the batch kept its raw downloads (no --clean-raw)
    kept = [p for p in project.rglob("*") if p.is_file() and "raw" not in p.relative_to(project).parts and p.name != "manifest.parquet"]
    before = {p: _digest(p) for p in kept}

    dry = invoke("clean-raw", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    listed = json.loads(dry.stdout)
    assert listed["files"] == len(raw) and listed["bytes"] == sum(p.stat().st_size for p in raw)
    assert sorted((data / "raw").iterdir()) == raw  # nothing deleted

    done = invoke("clean-raw", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["files"] == len(raw) and report["bytes"] == listed["bytes"] and report["manifest_rows"] == len(raw)
    assert list((data / "raw").iterdir()) == []
    assert {p: _digest(p) for p in kept} == before  # processed copies, tables, models, runs, exports untouched
    manifest = pl.read_parquet(data / "manifest.parquet")
    assert manifest["path"].null_count() == manifest.height and manifest["processed_path"].null_count() == 0

    after = invoke("batch", "01", "--synthetic", "--json", *options(BATCH_SETS))  # still done: nothing re-runs
    assert after.exit_code == 0, after.output
    assert {s["status"] for s in json.loads(after.stdout)["steps"]} == {"skipped"}


def test_training_and_freeze_after_clean_raw_then_predict_from_the_release(batch_project):
    project, invoke, _ = batch_project
    assert invoke("clean-raw").exit_code == 0  # (again, if the test above ran first: then it frees nothing)
    assert list((project / "data" / "raw").iterdir()) == []
    trained = invoke("train", "--json", *options([*BATCH_SETS[:-1], *LOOSE_GATES]))
    assert trained.exit_code == 0, trained.output
    run_id = json.loads(trained.stdout)[0]["run_id"]
    assert json.loads((project / "runs" / run_id / "metrics.json").read_text())["gates_pass"] is True

    frozen = invoke("freeze", "--run", run_id, "--tag", "v0.1", "--json")
    assert frozen.exit_code == 0, frozen.output
    assert json.loads(frozen.stdout)["forced"] is False and (project / "releases" / "v0.1" / "model.safetensors").is_file()

    photo = sorted((project / "data" / "processed").glob("*.jpg"))[0]
    predicted = invoke("predict", str(photo), "--model", "releases/v0.1", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert str(photo.name) in predicted.stdout and "lat" in predicted.stdout
