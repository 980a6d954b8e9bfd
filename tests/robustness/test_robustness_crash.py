"""Killed hard (SIGKILL) mid-run, then run again: a fetch and a training resume, nothing is torn.

The fetch runs in a child Python with the fake API's transport injected (the fake is an
in-process `httpx.MockTransport`, so the child builds its own from the same seed); the training
runs as a real `python -m geolocate train` process.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import polars as pl
import pytest

from geolocate.acquire.catalog import bbox_area
from geolocate.paths import DataPaths
from tests.fakes.mapillary import FAKE_TOKEN, FakeMapillary, RecordingSleep
from tests.robustness.conftest import REPO, child_env, every_file_opens, geolocate, wait_for

AREA = bbox_area((2.30, 48.85, 2.32, 48.87), "testville")


# The child builds the same fake world from the same seed (the fake holds lambdas and cannot be
# sent to a spawned process; a fork would inherit polars' thread pool, which can deadlock).
FETCH_CHILD = """
import sys
from pathlib import Path
import geolocate.acquire.fetch as fetch
from geolocate.paths import DataPaths
from tests.fakes.mapillary import RecordingSleep
from tests.robustness.test_robustness_crash import AREA, world
fetch._MERGE_EVERY = 10  # many manifest writes, so the kill is likely to land near one
fake = world(latency=0.02)  # slow enough that a loaded parent still kills it mid-way
fetch.run_fetch(fake.fetch_config(max_per_city=10_000), DataPaths(Path(sys.argv[1])), [AREA],
                transport=fake.transport(), sleep=RecordingSleep())
"""


def world(latency: float = 0.0) -> FakeMapillary:
    return FakeMapillary.grid(AREA.bbox, n=400, seed=5, per_sequence=8, latency=latency)


def _photos(data: DataPaths) -> list[str]:
    return [p.name for p in data.raw.glob("*.jpg")] if data.raw.is_dir() else []


def test_a_fetch_killed_hard_resumes_without_duplicates_or_torn_files(tmp_path, monkeypatch):
    from geolocate.acquire.fetch import run_fetch

    data = DataPaths(tmp_path / "data")
    child = subprocess.Popen([sys.executable, "-c", FETCH_CHILD, str(data.root)], cwd=REPO,
                             env=child_env(MAPILLARY_TOKEN=FAKE_TOKEN), stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: data.manifest.is_file() and len(_photos(data)) >= 60, 60, "photos and a manifest on disk", child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    fake = world()
    assert len(_photos(data)) < len(fake.images)  # it really was stopped mid-way

    monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)
    report = run_fetch(fake.fetch_config(max_per_city=10_000), data, [AREA], transport=fake.transport(), sleep=RecordingSleep())
    assert report.complete
    manifest = pl.read_parquet(data.manifest)
    assert manifest["image_id"].n_unique() == manifest.height  # no duplicate rows
    assert sorted(manifest["image_id"]) == sorted(fake.images)
    assert every_file_opens(data.root, allow_hidden_tmp=True) == []  # no truncated photo or parquet file
    assert sorted(_photos(data)) == sorted(f"{i}.jpg" for i in fake.images)


QUICK_TRAIN = ["--profile", "tiny", "--set", "train.epochs=4", "--set", "train.max_steps_per_epoch=3",
               "--set", "train.patience=10", "--set", "train.batch_size=32"]


@pytest.mark.slow
def test_a_training_killed_hard_resumes_from_its_last_checkpoint(project):
    child = geolocate("train", *QUICK_TRAIN, cwd=project)
    runs = project / "runs"

    def first_checkpoint() -> bool:
        return any((run / "state.pt").is_file() and (run / "last.json").is_file() for run in runs.glob("2*"))

    try:
        wait_for(first_checkpoint, 240, "the first checkpoint", child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    (run,) = list(runs.glob("2*"))
    assert not (run / "metrics.json").exists()  # killed before the end
    done_epochs = len(pl.read_csv(run / "metrics.csv"))
    assert 1 <= done_epochs < 4

    resumed = geolocate("train", "--resume", "latest", *QUICK_TRAIN, cwd=project)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert f"resuming run {run.name}" in err.replace("\n", " ")
    epochs = pl.read_csv(run / "metrics.csv")["epoch"].to_list()
    assert epochs == list(range(1, 5))  # continued after the checkpoint, no epoch twice
    assert (run / "metrics.json").is_file() and list(runs.glob("2*")) == [run]
    assert every_file_opens(run) == []
