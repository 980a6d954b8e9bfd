"""Shared fixtures. Stage-specific fixtures live in tests/<stage>/conftest.py."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MAPILLARY_TOKEN", "")  # tests set their own fake token explicitly


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory with no config.toml: commands use the packaged defaults."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
