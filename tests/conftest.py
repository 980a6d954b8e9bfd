"""Shared fixtures. Stage-specific fixtures live in tests/<stage>/conftest.py."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
# Two xdist workers on two cores: one torch thread each, or they fight over the cores
# (the tiny models run several times slower oversubscribed). Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MAPILLARY_TOKEN", "")  # tests set their own fake token explicitly


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory with no config.toml: commands use the packaged defaults."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_network(workdir, monkeypatch):
    """DNS/connect fails everywhere, no proxy, an empty Hugging Face cache: a machine offline."""
    import socket

    def unreachable(*args, **kwargs):
        raise socket.gaierror("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HF_HOME", str(workdir / "empty-hf-cache"))


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def cli(runner):
    """Invoke the geolocate CLI: `cli("cells", "--profile", "tiny")` → click Result."""
    from geolocate.cli import app

    def invoke(*args: str, **kwargs):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return invoke


# --- the synthetic data set (synth + prepare stage) ------------------------------------------


def _build_synth_data(root, **synth):
    from geolocate.acquire.prepare import run_prepare
    from geolocate.config import DataConfig, SynthConfig
    from geolocate.paths import DataPaths
    from geolocate.synth import run_synth

    data = DataPaths(root)
    run_synth(SynthConfig(**synth), data)
    run_prepare(DataConfig(max_size=64), data)
    return root


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A prepared synthetic data directory, built once per session; treat it as read-only.

    800 photos of 64 px in batch 01's five cities (seed 0): manifest, raw/ and processed/ (64 px).
    Point a command at it with `--set paths.data=<it>`, or `shutil.copytree` it into
    `workdir / "data"` before anything writes to it.
    """
    return _build_synth_data(tmp_path_factory.mktemp("synth") / "data", n_photos=800, size=64, batches=["01"])


@pytest.fixture(scope="session")
def synth_multiview_data(tmp_path_factory):
    """Like `synth_data` but four-view: 120 locations (north/east/south/west, a few views missing)."""
    return _build_synth_data(
        tmp_path_factory.mktemp("synth_mv") / "data", n_photos=480, size=64, batches=["01"], multiview=True
    )
