"""The train/evaluate surface a user meets: Ctrl-C names the resume command, `runs/latest` only
moves to a run with a checkpoint, and evaluate judges a run with its own saved config."""

from __future__ import annotations

import json
import os
import shutil

QUICK = ["synth.n_photos=900", "synth.size=64", "train.batch_size=32", "train.epochs=2", "train.max_steps_per_epoch=2"]


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def _copy(src, dst, *names):
    for name in names:
        if (src / name).exists():
            shutil.copytree(src / name, dst / name, symlinks=True)
    return dst


def test_ctrl_c_before_the_first_checkpoint_leaves_latest_alone(tiny_data, cli, in_project, tmp_path, monkeypatch):
    from geolocate.train import loop

    in_project(_copy(tiny_data, tmp_path, "data"))
    monkeypatch.setattr(loop, "train_one_epoch", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    result = cli("train", "--profile", "tiny", *_sets(QUICK))
    assert result.exit_code == 130
    assert "nothing to resume" in result.stderr and "--resume" not in result.stderr
    assert not os.path.lexists(tmp_path / "runs" / "latest")  # the empty run is not `latest`


def test_ctrl_c_after_a_checkpoint_names_the_resume_command(tiny_data, cli, in_project, tmp_path, monkeypatch):
    from geolocate.train import checkpointing

    in_project(_copy(tiny_data, tmp_path, "data"))
    real_save = checkpointing.save_epoch

    def interrupt_after_first_epoch(s, run, epoch, *args, **kwargs):
        real_save(s, run, epoch, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpointing, "save_epoch", interrupt_after_first_epoch)
    result = cli("train", "--profile", "tiny", *_sets(QUICK))
    assert result.exit_code == 130
    run_id = os.readlink(tmp_path / "runs" / "latest")
    assert f"geolocate train --resume {run_id}" in " ".join(result.stderr.split())
    assert "run the same command" not in result.stderr


def test_evaluate_judges_with_the_run_own_config_unless_asked(tiny_trained, cli, in_project, tmp_path):
    project = in_project(_copy(tiny_trained["root"], tmp_path, "data", "runs", "models"))
    run_dir = project / "runs" / tiny_trained["run_id"]
    own = cli("evaluate", "--run", tiny_trained["run_id"], env={"COLUMNS": "80"})
    assert own.exit_code == 0, own.output
    report = (run_dir / "REPORT.md").read_text()
    assert report.splitlines()[2].startswith("Judged with the run's own config (profile tiny)")
    assert "**is the global best**" in report and "did not beat" not in report  # it was promoted in training
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["judged_with"]["own"] is True and metrics["judged_with"]["gates"]["median_km_max"] == 8.0
    assert "test: top-1" in own.stdout and "report:" in own.stdout  # results on stdout
    assert "test: top-1" not in own.stderr

    other = cli("evaluate", "--run", tiny_trained["run_id"], "--profile", "v1")
    assert other.exit_code == 0, other.output
    assert "judged with profile v1" in other.stdout
    first = (run_dir / "REPORT.md").read_text().splitlines()[2]
    assert first.startswith("**Judged with profile v1, not the run's own (tiny)**") and "median < 1 km" in first
    refused = cli("freeze", "--tag", "v0.1", "--no-tag", "--force")
    assert refused.exit_code == 2 and "not its own" in refused.stderr


def test_epochs_and_batch_size_are_shortcuts_for_their_keys(cli, workdir, monkeypatch):
    from geolocate import systems

    seen = []
    monkeypatch.setattr(systems, "trainer", lambda cfg, paths, resume=None: (
        lambda cfg, paths, resume=None, seeds=None: seen.append(cfg.train.model_copy()) or []))
    assert cli("train", "--profile", "tiny", "--epochs", "3", "--batch-size", "7").exit_code == 0
    assert (seen[-1].epochs, seen[-1].batch_size) == (3, 7)
    assert cli("train", "--profile", "tiny", "--set", "train.epochs=4").exit_code == 0
    assert seen[-1].epochs == 4  # without the shortcut the key (or its default) stands
    refused = cli("train", "--profile", "tiny", "--epochs", "0")
    assert refused.exit_code != 0 and len(seen) == 2
