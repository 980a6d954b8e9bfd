"""A torch/torchvision pair that does not work together is one line with the fix (bootstrap and train)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geolocate.errors import UserError
from geolocate.models.compat import check_torchvision, matching_torchvision, mismatch_message

ROOT = Path(__file__).resolve().parents[2]
BROKEN = "operator torchvision::nms does not exist"


def _break_nms(monkeypatch):
    import torchvision.ops

    def nms(*args, **kwargs):
        raise RuntimeError(f"Traceback (most recent call last):\n  ...\nRuntimeError: {BROKEN}")

    monkeypatch.setattr(torchvision.ops, "nms", nms)


def test_the_installed_pair_works():
    check_torchvision()


@pytest.mark.parametrize("torch_version, expected", [("2.14.1", "0.29.1"), ("2.14.1+cpu", "0.29.1"), ("2.2.0", "0.17.0"), ("3.0.0", None)])
def test_matching_torchvision(torch_version, expected):
    assert matching_torchvision(torch_version) == expected


def test_a_broken_op_is_one_line_naming_the_matching_pair(monkeypatch):
    _break_nms(monkeypatch)
    with pytest.raises(UserError) as caught:
        check_torchvision()
    message = str(caught.value)
    import torch

    base = torch.__version__.split("+")[0]
    assert "\n" not in message and BROKEN in message
    assert f"pip install torch=={base} torchvision=={matching_torchvision(base)}" in message


def test_a_missing_torchvision_says_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.ops", None)  # `from torchvision.ops import …` raises ImportError
    with pytest.raises(UserError, match=r"torchvision.*pip install torch==.* torchvision==") as caught:
        check_torchvision()
    assert "\n" not in str(caught.value)


def test_a_cpu_build_points_at_its_index():
    message = mismatch_message("2.14.1+cpu", "0.28.0", RuntimeError(BROKEN))
    assert message.endswith("pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu")


def test_train_refuses_a_broken_pair_in_one_line(cli, workdir, monkeypatch):
    _break_nms(monkeypatch)
    result = cli("train", "--profile", "tiny")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "reinstall a matching pair" in lines[0], result.output


def test_the_bootstrap_check_runs_after_install_and_fails_in_one_line():
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert script.index("-m geolocate.models.compat") > script.index("pip install")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "geolocate.models.compat"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and ok.stderr == ""
    broken = ("import sys, runpy; sys.modules['torchvision.ops'] = None; "
              "sys.argv = ['compat', '.venv/bin/pip']; runpy.run_module('geolocate.models.compat', run_name='__main__')")
    bad = subprocess.run([sys.executable, "-c", broken], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: ") and ".venv/bin/pip install torch==" in bad.stderr
