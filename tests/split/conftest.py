"""Split and sanity fixtures: the manifest factory is shared with tests/cells."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cells"))

from manifest_factory import manifest_frame, write  # noqa: E402

from geolocate.cells import run_cells  # noqa: E402
from geolocate.config import load_config  # noqa: E402


@pytest.fixture
def cfg():
    """The tiny profile with a minimum that the small factory manifests reach."""
    return load_config(None, "tiny", ["cells.min_samples=30"])


@pytest.fixture
def labelled(tmp_path, cfg):
    """A data directory with a manifest (80 sequences of 12 photos), cells and labels."""
    data = write(tmp_path / "data", manifest_frame(n_sequences=80, seed=5))
    run_cells(cfg.cells, data)
    return data
