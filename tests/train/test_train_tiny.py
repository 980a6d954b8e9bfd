"""The tiny model really learns the synthetic world; runs are complete, resumable, honest."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from geolocate.geo import haversine_km

pytestmark = pytest.mark.slow


def _baselines(root):
    """Majority-class accuracy and the median km of always answering the majority cell (on test)."""
    split = pl.read_parquet(root / "data/split.parquet")
    labels = pl.read_parquet(root / "data/labels.parquet")
    cells = pl.read_parquet(root / "data/cells.parquet")
    manifest = pl.read_parquet(root / "data/manifest.parquet")
    frame = split.join(labels, on="image_id").join(manifest.select("image_id", "lat", "lon"), on="image_id")
    train = frame.filter(pl.col("split") == "train")
    test = frame.filter(pl.col("split") == "test")
    majority = train["cell_id"].value_counts().sort("count", descending=True)["cell_id"][0]
    acc = float((test["cell_id"] == majority).mean())
    c = cells.filter(pl.col("cell_id") == majority).row(0, named=True)
    km = float(np.median(haversine_km(c["centroid_lat"], c["centroid_lon"], test["lat"].to_numpy(), test["lon"].to_numpy())))
    return acc, km


def test_tiny_model_beats_majority_baselines(tiny_trained):
    test = tiny_trained["metrics"]["test"]
    majority_acc, majority_km = _baselines(tiny_trained["root"])
    assert test["acc_top1"] > majority_acc + 0.15, (test["acc_top1"], majority_acc)
    assert test["median_km"] < 0.5 * majority_km, (test["median_km"], majority_km)


def test_run_writes_every_artifact(tiny_trained):
    run = tiny_trained["run_dir"]
    for name in ("REPORT.md", "confusion_matrix.png", "geo_error.png", "metrics.csv", "predictions.parquet",
                 "metrics.json", "config.json", "best.safetensors", "best.json", "last.safetensors", "state.pt"):
        assert (run / name).is_file(), name
    report = (run / "REPORT.md").read_text()
    gates = json.loads((run / "metrics.json").read_text())["gates"]
    gate_lines = report.split("## Gates", 1)[1].splitlines()
    for gate in gates:  # every gate is in the report with the status evaluate decided
        row = next(line for line in gate_lines if line.startswith(f"| {gate['name']} |"))
        assert f"**{gate['status']}**" in row
    preds = pl.read_parquet(run / "predictions.parquet")
    assert preds.height == tiny_trained["metrics"]["test"]["n"]
    assert {"top_cells", "top_probs", "error_km", "pred_lat"} <= set(preds.columns)
    epochs = pl.read_csv(run / "metrics.csv")
    assert epochs["epoch"].to_list() == list(range(1, epochs.height + 1))


def test_sidecar_is_self_describing(tiny_trained):
    meta = json.loads((tiny_trained["run_dir"] / "best.json").read_text())
    assert meta["model"]["name"] == "tiny_resnet"
    assert len(meta["classes"]) == meta["model"]["num_classes"] > 1
    assert meta["temperature"] > 0 and meta["position"] in ("top1", "weighted", "median")
    assert "MLY|" not in json.dumps(meta)
    assert (tiny_trained["root"] / "models/best.json").is_file()


def test_report_mentions_global_best_and_gates(tiny_trained):
    summary = json.loads((tiny_trained["run_dir"] / "metrics.json").read_text())
    assert [g["name"] for g in summary["gates"]] == [
        "accuracy", "median_km", "p90_km", "beats_trivial_median_km", "beats_trivial_p90_km", "stability_std_km"]
    assert summary["became_best"] is True  # the first run in a fresh project always is


def test_report_and_metrics_put_the_model_beside_every_baseline(tiny_trained):
    summary = json.loads((tiny_trained["run_dir"] / "metrics.json").read_text())
    baselines, test = summary["baselines"], summary["metrics"]["test"]
    assert list(baselines) == ["majority", "centroid", "1-NN", "5-NN", "ceiling"]
    assert all(b["n"] == test["n"] for b in baselines.values())  # the same test photos
    assert baselines["ceiling"]["acc_top1"] == 1.0
    assert baselines["ceiling"]["median_km"] <= min(baselines[n]["median_km"] for n in ("majority", "centroid"))
    best = min(baselines["majority"]["median_km"], baselines["centroid"]["median_km"])
    gate = next(g for g in summary["gates"] if g["name"] == "beats_trivial_median_km")
    assert gate["threshold"] == best and gate["passed"] == (test["median_km"] < best)
    report = (tiny_trained["run_dir"] / "REPORT.md").read_text()
    assert "## Baselines" in report and "5-NN" in report and "Best trivial baseline" in report
