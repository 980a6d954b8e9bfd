"""Run directories, metrics.csv, runs/latest, and the global best."""

from __future__ import annotations

import json

import os
import re
from datetime import datetime, timezone

import pytest

import geolocate.artifacts.rundir as rundir
from geolocate.artifacts.best import maybe_promote
from geolocate.artifacts.checkpoint import read_sidecar, save_checkpoint
from geolocate.artifacts.resolve import resolve_checkpoint
from geolocate.artifacts.rundir import RunDir, new_run_id, read_metrics_rows, resolve_run
from geolocate.errors import UserError


def test_run_id_has_time_profile_and_random_suffix():
    run_id = new_run_id("Tiny Scout", datetime(2026, 11, 21, 21, 30, 0, tzinfo=timezone.utc))
    assert re.fullmatch(r"20261121-213000-tiny-scout-[0-9a-f]{4}", run_id)


def test_run_paths_are_the_documented_names(project):
    run = RunDir.create(project, "tiny")
    names = [run.config, run.metrics_csv, run.metrics_json, run.state, run.report, run.confusion_matrix,
             run.geo_error, run.predictions]
    assert [p.name for p in names] == ["config.json", "metrics.csv", "metrics.json", "state.pt", "REPORT.md",
                                       "confusion_matrix.png", "geo_error.png", "predictions.parquet"]
    assert (run.best.name, run.last.name) == ("best", "last") and run.root.parent == project.runs


def test_latest_symlink_is_swapped_to_the_newest_run(project):
    first = RunDir.create(project, "tiny")
    second = RunDir.create(project, "tiny")
    link = project.runs / "latest"
    assert link.is_symlink() and os.readlink(link) == second.run_id  # relative: the project can move
    assert resolve_run("latest", project).run_id == second.run_id
    assert resolve_run(first.run_id, project).root == first.root
    assert not [p for p in project.runs.iterdir() if p.name.startswith(".latest")]  # no temp link left


def test_latest_file_stands_in_without_symlinks(project, monkeypatch, make_model, meta):
    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(rundir.os, "symlink", no_symlinks)
    run = RunDir.create(project, "tiny")
    assert (project.runs / "LATEST").read_text().strip() == run.run_id
    assert resolve_run("latest", project).run_id == run.run_id
    save_checkpoint(run.best, make_model(), meta)
    assert resolve_checkpoint(project.runs / "latest", project) == run.best  # the path form works too


def test_unknown_run_says_how_to_create_one(project):
    with pytest.raises(UserError, match="no run 'nope'.*geolocate train"):
        resolve_run("nope", project)
    with pytest.raises(UserError, match="no runs yet"):
        resolve_run("latest", project)


def test_metrics_rows_append_and_a_redone_epoch_replaces(project):
    run = RunDir.create(project, "tiny")
    run.append_metrics_row({"epoch": 1, "loss": 2.0})
    run.append_metrics_row({"epoch": 2, "loss": 1.5, "val_median_km": 3.0})
    run.append_metrics_row({"epoch": 2, "loss": 1.4, "val_median_km": 2.9})  # resumed run redoes epoch 2
    rows = read_metrics_rows(run.metrics_csv)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["val_median_km"] == "" and rows[1]["loss"] == "1.4"
    assert run.metrics_csv.read_text().splitlines()[0] == "epoch,loss,val_median_km"


def _run_with_best(project, make_model, meta, seed):
    run = RunDir.create(project, "tiny")
    save_checkpoint(run.best, make_model(seed=seed), {**meta, "run_id": run.run_id})
    return run


@pytest.mark.parametrize(
    "first, second, promoted",
    [
        ({"median_km": 2.0, "p90_km": 9.0}, {"median_km": 1.5, "p90_km": 20.0}, True),  # lower median wins
        ({"median_km": 2.0, "p90_km": 9.0}, {"median_km": 2.5, "p90_km": 1.0}, False),  # p90 only breaks ties
        ({"median_km": 2.0, "p90_km": 9.0}, {"median_km": 2.0, "p90_km": 8.0}, True),  # tie: lower p90 wins
        ({"median_km": 2.0, "p90_km": 9.0}, {"median_km": 2.0, "p90_km": 9.0}, False),  # equal: not beaten
    ],
)
def test_best_is_replaced_only_when_beaten(project, make_model, meta, first, second, promoted):
    run1 = _run_with_best(project, make_model, meta, 1)
    run2 = _run_with_best(project, make_model, meta, 2)
    assert maybe_promote(run1.best, first, project, gates_pass=True) is True  # no best yet: the first run becomes it
    assert maybe_promote(run2.best, second, project, gates_pass=True) is promoted
    best = read_sidecar("best", project)
    winner, metrics = (run2, second) if promoted else (run1, first)
    assert best["run_id"] == winner.run_id and best["metrics"]["val"]["median_km"] == metrics["median_km"]
    assert not (project.models / ".lock").exists()


def test_promoted_weights_are_the_runs_weights(project, make_model, meta, factory):
    import torch

    from geolocate.artifacts.checkpoint import load_checkpoint

    run = _run_with_best(project, make_model, meta, 7)
    maybe_promote(run.best, {"median_km": 1.0, "p90_km": 2.0}, project, gates_pass=True)
    best, _ = load_checkpoint("best", project, factory=factory)
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(best(x), make_model(seed=7)(x))


def test_best_needs_a_median_and_passed_gates(project, make_model, meta):
    run = _run_with_best(project, make_model, meta, 1)
    assert maybe_promote(run.best, {"p90_km": 3.0}, project, gates_pass=True) is False  # cannot be ranked
    assert maybe_promote(run.best, {"median_km": 0.1, "p90_km": 0.2}, project, gates_pass=False) is False
    assert not (project.models / "best.json").exists()  # a run that failed its gates never becomes the default


def test_predict_without_a_default_says_which_run_is_newest_and_why(project, make_model, meta):
    from geolocate.artifacts.resolve import resolve_checkpoint

    run = _run_with_best(project, make_model, meta, 1)
    from geolocate.artifacts.rundir import point_latest

    point_latest(project.runs, run)
    with pytest.raises(UserError, match=f"newest run {run.run_id} has not been evaluated"):
        resolve_checkpoint("best", project)
    run.metrics_json.write_text(json.dumps({"gates_pass": False, "gates": [
        {"name": "beats_trivial_median_km", "passed": False}, {"name": "stability_std_share", "passed": True}]}))
    with pytest.raises(UserError, match=f"newest run {run.run_id} failed its gates \\(beats_trivial_median_km\\)") as err:
        resolve_checkpoint("best", project)
    assert f"--checkpoint {run.root}" in str(err.value)


def test_readers_never_pair_weights_and_sidecar_of_different_runs(project, make_model, meta):
    """A promotion replaces two files; a reader racing it still gets one run's pair, never a mix."""
    import threading
    import time

    import torch

    from geolocate.artifacts.checkpoint import copy_checkpoint, read_checkpoint

    runs = [_run_with_best(project, make_model, meta, seed) for seed in (1, 2)]
    heads = {run.run_id: make_model(seed=seed).head.weight for run, seed in zip(runs, (1, 2))}
    copy_checkpoint(runs[0].best, project.models / "best")
    stop = threading.Event()
    reads = [0]

    def promote_back_and_forth():
        # Keep replacing until the reader has raced at least 20 reads against it (bounded in
        # time), so the test does not depend on how the scheduler shares the cores.
        deadline, i = time.monotonic() + 60, 0
        while (i < 60 or reads[0] < 20) and time.monotonic() < deadline:
            copy_checkpoint(runs[i % 2].best, project.models / "best")
            i += 1
        stop.set()

    writer = threading.Thread(target=promote_back_and_forth)
    writer.start()
    while not stop.is_set():
        sidecar, state = read_checkpoint(project.models / "best")
        assert torch.equal(state["head.weight"], heads[sidecar["run_id"]])
        reads[0] += 1
    writer.join()
    assert reads[0] >= 20
