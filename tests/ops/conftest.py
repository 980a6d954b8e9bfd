"""A project that ran `geolocate batch 01 --synthetic --profile tiny` from cold, once per module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ops.ops_settings import BATCH_SETS, options


@pytest.fixture(scope="module")
def module_cli(tmp_path_factory):
    """(project directory, invoke) where invoke runs the CLI inside that directory."""
    from typer.testing import CliRunner

    from geolocate.cli import app

    project: Path = tmp_path_factory.mktemp("batch_project")
    runner = CliRunner()

    def invoke(*args: str):
        previous = Path.cwd()
        os.chdir(project)
        try:
            return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        finally:
            os.chdir(previous)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CEILING_DIRECTORIES", str(project.parent))  # freeze must not tag an enclosing repo
        yield project, invoke


@pytest.fixture(scope="module")
def batch_project(module_cli):
    """The project after the first, cold `geolocate batch 01 --synthetic --json`."""
    project, invoke = module_cli
    result = invoke("batch", "01", "--synthetic", "--json", *options(BATCH_SETS))
    assert result.exit_code == 0, result.output
    return project, invoke, result
