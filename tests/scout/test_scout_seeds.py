"""`geolocate train --seeds N` on scout-sniper runs: mean ± std across seeds, table and JSON."""

from __future__ import annotations

import json

import numpy as np

from geolocate.config import load_config
from geolocate.paths import ProjectPaths
from geolocate.scout import train as scout_sniper
from geolocate.train.run import RunSummary as ScoutRunSummary


def _fake_runs(seed_metrics):
    calls = iter(seed_metrics)

    def train_run(cfg, paths, root, skip_done):
        metrics = next(calls)
        return ScoutRunSummary(f"run-s{cfg.train.seed}", "/nowhere", {"test": metrics}, False)

    return train_run


def test_seeds_are_aggregated_into_a_table_and_a_json_file(workdir, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    per_seed = [{"ensemble": {"n": 40, "acc_top1": float(a), "median_km": float(m)},
                 "ensemble + sniper": {"n": 40, "acc_top1": float(a), "median_km": float(m) - 5}}
                for a, m in zip(rng.uniform(0.3, 0.6, 3), rng.uniform(50, 200, 3))]
    monkeypatch.setattr(scout_sniper, "_train_run", _fake_runs(per_seed))
    cfg = load_config(None, "tiny-scout-sniper", ["train.phase='all'"])
    paths = ProjectPaths.from_config(cfg.paths)
    paths.runs.mkdir(parents=True, exist_ok=True)

    runs = scout_sniper.run_train_scout_sniper(cfg, paths, seeds=3)

    first = f"run-s{cfg.train.seed}"
    assert [r.run_id for r in runs] == [first, f"run-s{cfg.train.seed + 1}", f"run-s{cfg.train.seed + 2}"]
    summary = json.loads((paths.runs / f"seeds-{first}.json").read_text())
    medians = [m["ensemble + sniper"]["median_km"] for m in per_seed]
    stat = summary["test"]["ensemble + sniper"]["median_km"]
    assert summary["seeds"] == 3 and np.isclose(stat["mean"], np.mean(medians))
    assert np.isclose(stat["std"], np.std(medians, ddof=1))
    assert runs[-1].metrics["seeds"] == summary
    err = capsys.readouterr().err
    assert "mean ± std over 3 seeds" in err and "ensemble + sniper" in err
    assert f"{np.mean(medians):.1f} ± {np.std(medians, ddof=1):.1f}" in err


def test_a_single_seed_writes_no_summary(workdir, monkeypatch):
    monkeypatch.setattr(scout_sniper, "_train_run", _fake_runs([{"ensemble": {"median_km": 10.0}}]))
    cfg = load_config(None, "tiny-scout-sniper", ["train.phase='all'"])
    paths = ProjectPaths.from_config(cfg.paths)
    paths.runs.mkdir(parents=True, exist_ok=True)
    assert len(scout_sniper.run_train_scout_sniper(cfg, paths, seeds=1)) == 1
    assert not list(paths.runs.glob("seeds-*.json"))
