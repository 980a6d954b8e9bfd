"""`geolocate batch`: stops at the first failing step, resumes there, re-runs what changed.

No training here (the cold batch of test_ops_batch_cold.py covers it): a cells minimum out of
reach stops the plan at cells, before any model is built.
"""

from __future__ import annotations

import json

import polars as pl

from geolocate.config import load_config
from geolocate.ops.batch_state import BatchState, file_digest, step_key
from geolocate.paths import ProjectPaths

SETS = ["--profile", "tiny", "--set", "synth.n_photos=300", "--set", "synth.size=48"]
OUT_OF_REACH = ["--set", "cells.min_samples=100000"]


def test_the_first_failing_step_stops_the_plan_and_a_rerun_resumes_there(workdir, cli):
    failed = cli("batch", "1", "--synthetic", *SETS, *OUT_OF_REACH)
    assert failed.exit_code == 2
    lines = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: batch 01 stopped at cells: no cell reaches")
    state = json.loads((workdir / "data" / "batches" / "01.json").read_text())
    assert sorted(state["steps"]) == ["prepare", "synth"]  # done steps kept, the failed one not recorded
    assert not (workdir / "data" / "cells.parquet").exists()

    again = cli("batch", "01", "--synthetic", *SETS, *OUT_OF_REACH)
    assert again.exit_code == 2
    text = " ".join(again.stderr.split())
    assert "skip synth: done" in text and "skip prepare: done" in text and "stopped at cells" in text


def test_a_changed_manifest_reruns_the_steps_that_read_it(workdir, cli):
    cli("batch", "01", "--synthetic", *SETS, *OUT_OF_REACH)
    cfg = load_config(None, "tiny", ["synth.n_photos=300", "synth.size=48"])
    paths = ProjectPaths.from_config(cfg.paths)
    state = BatchState.load(paths, "01")
    assert state.steps["prepare"]["key"] == step_key("prepare", cfg, paths, state.steps["prepare"])

    manifest = pl.read_parquet(paths.data.manifest)
    cleared = manifest.with_columns(pl.lit(None, dtype=pl.Utf8).alias("path"))  # what clean-raw does
    cleared.write_parquet(paths.data.manifest)
    assert state.steps["prepare"]["key"] == step_key("prepare", cfg, paths, state.steps["prepare"])

    moved = manifest.with_columns(pl.when(pl.col("image_id") == manifest["image_id"][0])
                                  .then(pl.lit(None, dtype=pl.Utf8)).otherwise(pl.col("processed_path")).alias("processed_path"))
    moved.write_parquet(paths.data.manifest)  # a photo lost its processed copy: prepare must run again
    assert state.steps["prepare"]["key"] != step_key("prepare", cfg, paths, state.steps["prepare"])
    rerun = cli("batch", "01", "--synthetic", *SETS, *OUT_OF_REACH)
    text = " ".join(rerun.stderr.split())
    assert "skip synth: done" in text and "→ prepare" in text and "1 photos processed" in text


def test_a_changed_config_reruns_the_step(workdir, cli):
    cli("batch", "01", "--synthetic", *SETS, *OUT_OF_REACH)
    other = cli("batch", "01", "--synthetic", *SETS, "--set", "data.max_size=40", *OUT_OF_REACH)
    text = " ".join(other.stderr.split())
    assert "skip synth: done" in text and "→ prepare" in text and "skip prepare" not in text


def test_parquet_columns_are_hashed_by_content(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pl.DataFrame({"image_id": ["1", "2"], "x": [1.0, 2.0]}).write_parquet(a)
    pl.DataFrame({"image_id": ["1", "2"], "x": [1.0, 2.0]}).write_parquet(b, compression="gzip")
    assert file_digest(a, ("image_id", "x")) == file_digest(b, ("image_id", "x"))
    assert file_digest(a, None) != file_digest(b, None)
    pl.DataFrame({"image_id": ["1", "3"], "x": [1.0, 2.0]}).write_parquet(b)
    assert file_digest(a, ("image_id",)) != file_digest(b, ("image_id",))
    assert file_digest(tmp_path / "none.parquet", None) == "absent"


def test_a_training_killed_inside_a_batch_is_found_for_resuming(workdir):
    from geolocate.artifacts.rundir import RunDir
    from geolocate.ops.batch import _interrupted_run

    paths = ProjectPaths.from_config(load_config().paths)
    older = RunDir.create(paths, "tiny")
    (older.root / "metrics.json").write_text("{}")
    record = {"started": "2026-11-21 22:00:00 UTC", "latest_before": older.run_id}
    assert _interrupted_run(paths, record) is None  # no run started since the batch noted the latest
    killed = RunDir.create(paths, "tiny")
    assert _interrupted_run(paths, record) is None  # no checkpoint yet: nothing to resume, train again
    (killed.root / "state.pt").write_bytes(b"")
    assert _interrupted_run(paths, record) == killed.run_id
    assert _interrupted_run(paths, {**record, "finished": "2026-11-21 22:05:00 UTC"}) is None
    (killed.root / "metrics.json").write_text("{}")
    assert _interrupted_run(paths, record) is None  # it finished after all


def test_a_rerun_upstream_step_makes_the_next_ones_check_their_inputs_again(workdir, cli):
    cli("batch", "01", "--synthetic", *SETS, *OUT_OF_REACH)
    redrawn = cli("batch", "01", "--synthetic", *SETS, "--set", "synth.seed=1", *OUT_OF_REACH)
    text = " ".join(redrawn.stderr.split())
    # the new synthetic rows carry no processed copy yet: prepare must not be skipped on stale keys
    assert "→ synth" in text and "→ prepare" in text and "300 photos processed" in text
    again = cli("batch", "01", "--synthetic", *SETS, "--set", "synth.seed=1", *OUT_OF_REACH)
    text = " ".join(again.stderr.split())
    assert "skip synth: done" in text and "skip prepare: done" in text
