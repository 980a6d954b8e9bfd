"""--resume continues exactly where a run stopped; torchrun runs DDP on CPU with gloo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import polars as pl
import pytest

pytestmark = pytest.mark.slow
QUICK = ["train.epochs=3", "train.max_steps_per_epoch=4", "train.patience=10"]


class _Crash(Exception):
    pass


def _copy_data(src, dst):
    shutil.copytree(src / "data", dst / "data")
    return dst


def test_resume_matches_an_uninterrupted_run(tiny_data, tiny_config, tmp_path, in_project, monkeypatch):
    from geolocate.paths import ProjectPaths
    from geolocate.train import checkpointing
    from geolocate.train.run import run_train

    in_project(_copy_data(tiny_data, tmp_path))
    cfg = tiny_config(QUICK)
    paths = ProjectPaths.from_config(cfg.paths)
    straight = run_train(cfg, paths)[0]

    real_save = checkpointing.save_epoch

    def crash_after_first_epoch(s, run, epoch, *args, **kwargs):
        real_save(s, run, epoch, *args, **kwargs)
        if epoch == 0:
            raise _Crash

    monkeypatch.setattr(checkpointing, "save_epoch", crash_after_first_epoch)
    with pytest.raises(_Crash):
        run_train(cfg, paths)
    monkeypatch.setattr(checkpointing, "save_epoch", real_save)
    resumed = run_train(cfg, paths, resume="latest")[0]

    a = pl.read_csv(tmp_path / straight.run_dir / "metrics.csv")
    b = pl.read_csv(tmp_path / resumed.run_dir / "metrics.csv")
    assert b["epoch"].to_list() == [1, 2, 3]
    assert b["train_loss"].to_list() == pytest.approx(a["train_loss"].to_list(), rel=1e-5)
    assert resumed.metrics["test"]["median_km"] == pytest.approx(straight.metrics["test"]["median_km"], rel=1e-6)


def _free_port() -> int:
    """A loopback port nobody holds now: a fixed one collides with another test run on the machine."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_two_processes_gloo(tiny_data, tmp_path):
    project = _copy_data(tiny_data, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "geolocate", "train", "--profile", "tiny",
           *[a for item in ["synth.n_photos=900", "train.epochs=2", "train.max_steps_per_epoch=3", "train.batch_size=16"]
             for a in ("--set", item)]]
    out = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = [p for p in (project / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, "only rank 0 writes a run"
    metrics = pl.read_csv(runs[0] / "metrics.csv")
    assert metrics["epoch"].to_list() == [1, 2]
    assert (runs[0] / "REPORT.md").is_file()
