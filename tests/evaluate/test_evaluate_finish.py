"""The finish both systems share: area gates, radius, warnings, promotion by one rule, metrics.json, REPORT.md."""

from __future__ import annotations

import json

import h3
import numpy as np
import polars as pl
import pytest

from geolocate import schemas
from geolocate.artifacts.best import DefaultModel
from geolocate.artifacts.rundir import RunDir
from geolocate.config import load_config
from geolocate.evaluate.finish import Classes, Measured, Split, finish_evaluation
from geolocate.evaluate.position import score_split
from geolocate.paths import ProjectPaths

# Two groups of classes 300 km apart (res-5 cells): an imported area, its photos all named `local`.
CENTRES = [(44.70, -1.20), (44.75, -1.10), (47.20, -1.55), (47.25, -1.45)]


def _classes() -> Classes:
    cells = [h3.latlng_to_cell(lat, lon, 5) for lat, lon in CENTRES]
    return Classes(np.array(CENTRES), cells, ["local"] * len(cells))


def _split(rng, n: int, right: float) -> Split:
    """`n` examples; a share `right` of them get most probability on their own class."""
    labels = rng.integers(0, len(CENTRES), n)
    truth = np.array(CENTRES)[labels] + rng.normal(0, 0.01, (n, 2))
    guess = np.where(rng.random(n) < right, labels, (labels + 2) % len(CENTRES))
    logits = np.full((n, len(CENTRES)), -2.0)
    logits[np.arange(n), guess] = 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scored = score_split(probs, labels, truth, np.array(CENTRES), "top1")
    return Split(probs, logits, labels, truth, [f"local:{i:04x}" for i in range(n)], scored)


class Default:
    """A system's default model held in memory (what `models/best` or `models/scout-sniper/` is on disk)."""

    def __init__(self):
        self.val, self.run_id = None, None

    def model(self, run_id: str) -> DefaultModel:
        def install(val):
            self.val, self.run_id = dict(val), run_id

        return DefaultModel("models/test", lambda: self.val, install, lambda: self.run_id)


@pytest.fixture
def imported(tmp_path):
    paths = ProjectPaths(tmp_path / "data", tmp_path / "runs", tmp_path / "models", tmp_path / "releases", tmp_path / "exports")
    paths.data.root.mkdir(parents=True)
    rows = pl.DataFrame({"image_id": ["local:" + "ab" * 8, "local:" + "cd" * 8], "source": ["import", "import"]})
    schemas.conform(rows, schemas.MANIFEST).write_parquet(paths.data.manifest)
    return paths


def _measure(tmp_path, name: str, right: float, default: Default, stored: dict, n: int = 80) -> Measured:
    rng = np.random.default_rng(0)
    run = RunDir(tmp_path / "runs" / name)
    run.root.mkdir(parents=True)
    return Measured("v1", run, _classes(), _split(rng, n, right), _split(rng, n, right), _baselines(rng, n),
                    [5.0, 5.1, 5.0, 5.05, 5.0], default.model(name), stored.update, temperature=1.0)


def _baselines(rng, n: int) -> dict:
    far = {"median_km": 150.0, "p90_km": 300.0, "n": n}
    return {"majority": far, "centroid": far}


def test_an_imported_area_is_judged_by_its_baselines_and_tabled_by_h3_parent(tmp_path, imported):
    cfg = load_config(None, "tiny", [])  # the tiny profile's fixed thresholds are France's
    default, stored = Default(), {}
    summary = finish_evaluation(cfg, imported, _measure(tmp_path, "good", 0.9, default, stored))
    names = [g["name"] for g in summary["gates"]]
    assert "accuracy" not in names and "beats_trivial_median_km" in names  # no fixed threshold on imported photos
    assert "these photos were imported" in summary["gate_basis"]
    assert summary["per_area_by"] == "H3 cell (res 3)" and len(summary["per_area"]) == 2  # not one `local` row
    assert stored["radius"]["n_val"] == 80 and "test" in summary["radius"]  # the predictor's radius, fitted on val
    assert summary["gates_pass"] and summary["became_best"] and default.run_id == "good"
    saved = json.loads((tmp_path / "runs/good/metrics.json").read_text())
    report = (tmp_path / "runs/good/REPORT.md").read_text()
    assert saved["promotion"]["promoted"] and "## Per H3 cell (res 3) (test)" in report
    assert "became the default model (models/test)" in report and saved["small_sample"] is None


def test_a_run_that_fails_its_gates_is_kept_but_never_the_default(tmp_path, imported):
    cfg = load_config(None, "tiny", [])
    default, stored = Default(), {}
    finish_evaluation(cfg, imported, _measure(tmp_path, "good", 0.9, default, stored))
    summary = finish_evaluation(cfg, imported, _measure(tmp_path, "bad", 0.0, default, stored))
    assert not summary["gates_pass"] and not summary["became_best"] and default.run_id == "good"
    assert "failed its gates" in summary["promotion"]["why"]
    assert (tmp_path / "runs/bad/metrics.json").is_file()  # kept as a run
    assert "failed its gates: kept as a run" in (tmp_path / "runs/bad/REPORT.md").read_text()


def test_a_tiny_split_is_said_and_claims_no_coverage(tmp_path, imported):
    default, stored = Default(), {}
    summary = finish_evaluation(load_config(None, "tiny", []), imported, _measure(tmp_path, "few", 0.9, default, stored, n=8))
    assert "cannot be trusted" in summary["small_sample"] and summary["small_sample"] in summary["warnings"]
    report = (tmp_path / "runs/few/REPORT.md").read_text()
    assert "Coverage is not claimed" in report and "| ECE |" not in report
