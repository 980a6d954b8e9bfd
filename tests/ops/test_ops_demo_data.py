"""The demo's data steps are the batch plan's steps: same checks, failures named by step."""

from __future__ import annotations

import polars as pl
import pytest

from geolocate.config import load_config
from geolocate.errors import UserError
from geolocate.ops.demo import prepare_data, working_directory
from geolocate.paths import ProjectPaths

SMALL = ["synth.n_photos=300", "synth.size=32", "data.max_size=32", "cells.min_samples=10"]


def test_prepare_data_builds_a_split_that_passes_sanity(tmp_path):
    from geolocate.split.sanity import run_sanity

    with working_directory(tmp_path / "demo"):
        cfg = load_config(None, "tiny", SMALL)
        paths = ProjectPaths.from_config(cfg.paths)
        prepare_data(cfg, paths)
        split = pl.read_parquet(paths.data.split)
        assert set(split["split"].unique()) == {"train", "val", "test"}
        assert run_sanity(cfg, paths.data).ok


def test_a_failing_step_stops_the_demo_naming_it(tmp_path, monkeypatch):
    import geolocate.split.sanity as sanity

    def one_violation(report, *args, **kwargs):
        report.add("photos exist", ["1 missing (123)"], "")

    monkeypatch.setattr(sanity, "_photos", one_violation)
    with working_directory(tmp_path / "demo"):
        cfg = load_config(None, "tiny", SMALL)
        with pytest.raises(UserError, match=r"demo stopped at sanity: 1 violation\(s\): photos exist: 1 missing") as caught:
            prepare_data(cfg, ProjectPaths.from_config(cfg.paths))
    assert caught.value.exit_code == 1
