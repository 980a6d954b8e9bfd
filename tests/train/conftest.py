"""A tiny trained project, built once per test session worker: synth → … → train (tiny profile)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Small enough for CI on two cores, large enough that the tiny model must learn something real.
TINY_OVERRIDES = [
    "synth.n_photos=900",
    "synth.size=64",
    "train.epochs=5",
    "train.batch_size=32",
    # The stability gate reads the last epochs after the first (random-init) one, as the tiny profile's
    # 6 epochs do with k = 5: a run failing a gate is never the default model that `predict` uses.
    "eval.stability_last_k=4",
]


def tiny_config(overrides: list[str] | None = None):
    from geolocate.config import load_config

    return load_config(None, "tiny", TINY_OVERRIDES + list(overrides or []))


@pytest.fixture(name="tiny_config")
def tiny_config_fixture():
    """`tiny_config(overrides)`: the tiny profile at test size, plus overrides."""
    return tiny_config


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A prepared, labelled, split synthetic data set; returns the project directory."""
    from geolocate.ops.demo import prepare_data, working_directory
    from geolocate.paths import ProjectPaths

    root = tmp_path_factory.mktemp("tiny_project")
    with working_directory(root):
        cfg = tiny_config()
        prepare_data(cfg, ProjectPaths.from_config(cfg.paths))
    return root


@pytest.fixture(scope="session")
def tiny_trained(tiny_data: Path) -> dict:
    """`tiny_data` with one finished run (trained + evaluated); returns its summary."""
    from geolocate.ops.demo import working_directory
    from geolocate.paths import ProjectPaths
    from geolocate.train.run import run_train

    with working_directory(tiny_data):
        cfg = tiny_config()
        run = run_train(cfg, ProjectPaths.from_config(cfg.paths))[0]
    return {"root": tiny_data, "run_id": run.run_id, "run_dir": tiny_data / run.run_dir, "metrics": run.metrics}


@pytest.fixture
def in_project(monkeypatch):
    """chdir into a project directory for one test."""

    def enter(path: Path) -> Path:
        monkeypatch.chdir(path)
        return path

    return enter



@pytest.fixture
def project(tiny_data, tmp_path, in_project):
    """A private copy of the tiny data set as the current project (a test may change it)."""
    import shutil

    shutil.copytree(tiny_data / "data", tmp_path / "data")
    return in_project(tmp_path)


@pytest.fixture(scope="module")
def exported(tiny_trained, tmp_path_factory):
    """A copy of the tiny run's best checkpoint with its ONNX graph (one per test module: a module may edit its sidecar)."""
    import shutil

    from geolocate.artifacts.onnx_export import export_onnx

    folder = tmp_path_factory.mktemp("exported")
    for src in tiny_trained["run_dir"].glob("best.*"):
        shutil.copyfile(src, folder / src.name)
    export_onnx(folder / "best")
    return folder / "best"
