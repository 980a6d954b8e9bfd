"""Fixtures of the robustness tests: a small labelled project, child-process helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--profile", "tiny", "--set", "synth.n_photos=600", "--set", "synth.size=64"]


@pytest.fixture(scope="session")
def labelled_data(synth_data, tmp_path_factory) -> Path:
    """The shared synthetic data set with cells, labels and split (tiny profile); read-only."""
    from geolocate.cells import run_cells
    from geolocate.config import load_config
    from geolocate.paths import DataPaths
    from geolocate.split.run import run_split

    root = tmp_path_factory.mktemp("labelled") / "data"
    shutil.copytree(synth_data, root)
    cfg = load_config(None, "tiny")
    run_cells(cfg.cells, DataPaths(root))
    run_split(cfg, DataPaths(root))
    return root


@pytest.fixture
def project(labelled_data, workdir, monkeypatch):
    """A working directory holding a copy of `labelled_data` as ./data."""
    shutil.copytree(labelled_data, workdir / "data")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(workdir.parent))
    return workdir


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a `python -m geolocate` child: this checkout first, one thread, no git above."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GIT_CEILING_DIRECTORIES": "/tmp"}
    return {**env, **extra}


def geolocate(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    """Start `python -m geolocate ARGS` in `cwd`."""
    return subprocess.Popen([sys.executable, "-m", "geolocate", *args], cwd=cwd, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for(predicate, timeout: float, what: str, process=None) -> None:
    """Poll `predicate` until true; fail naming `what` (and the child's stderr if it died).

    `process` is a `subprocess.Popen` or a `multiprocessing.Process` that must stay alive meanwhile.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if isinstance(process, subprocess.Popen) and process.poll() is not None:
            pytest.fail(f"the child exited ({process.returncode}) before {what}: {process.stderr.read()[-2000:]}")
        if process is not None and hasattr(process, "is_alive") and not process.is_alive():
            pytest.fail(f"the child exited ({process.exitcode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def every_file_opens(root: Path, allow_hidden_tmp: bool = False) -> list[str]:
    """Files under `root` that do not open as what their suffix says (parquet, jpg, json, png,
    safetensors). A SIGKILL can leave the hidden temporary file of an atomic write behind
    (`.<name>.<random>.tmp`, never read as data); `allow_hidden_tmp` tolerates those."""
    import json

    import polars as pl
    from PIL import Image

    bad = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            if path.suffix == ".parquet":
                pl.read_parquet(path)
            elif path.suffix in (".jpg", ".png"):
                with Image.open(path) as image:
                    image.load()
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(path), framework="numpy") as weights:
                    [weights.get_tensor(k) for k in weights.keys()]
            elif path.suffix == ".tmp" and not (allow_hidden_tmp and path.name.startswith(".")):
                raise ValueError("a temporary file was left behind")
        except Exception as exc:  # any failure to open is what we look for
            bad.append(f"{path.relative_to(root)}: {type(exc).__name__}: {exc}")
    return bad
