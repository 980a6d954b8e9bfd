"""The operations surface: thin Makefile targets, no torch for the data-side commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target, expected", [
    (["batch", "BATCH=03"], ".venv/bin/geolocate batch --batch 03 --profile v1"),
    (["batch", "BATCH=02", "PROFILE=tiny", "ARGS=--synthetic --clean-raw"], ".venv/bin/geolocate batch --batch 02 --profile tiny --synthetic --clean-raw"),
    (["export"], ".venv/bin/geolocate export"),
    (["clean-raw", "ARGS=--dry-run"], ".venv/bin/geolocate clean-raw --dry-run"),
    (["kpi"], ".venv/bin/geolocate kpi"),
])
def test_make_targets_are_one_cli_call(target, expected):
    out = subprocess.run(["make", "-s", "-n", "-C", str(REPO), *target], capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected


def test_batch_clean_raw_and_kpi_do_not_import_torch(workdir):
    code = ("import sys; from geolocate.cli import app; from typer.testing import CliRunner; r = CliRunner();"
            "[r.invoke(app, a) for a in (['batch', '--help'], ['clean-raw', '--dry-run'], ['kpi'])];"
            "import geolocate.ops.batch; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip() == "False"
