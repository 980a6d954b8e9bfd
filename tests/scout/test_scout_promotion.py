"""Scout-sniper promotion selects on validation, never on test (test is only reported)."""

from __future__ import annotations

import json

from geolocate.paths import ProjectPaths
from geolocate.scout.bundle import BUNDLE_NAME
from geolocate.scout.evaluate import AFTER, _promote


def _run(tmp_path, name: str):
    root = tmp_path / "runs" / name
    root.mkdir(parents=True)
    (root / BUNDLE_NAME).write_text(json.dumps({"run": name}))
    return root


def test_the_better_val_wins_even_when_its_test_is_worse(tmp_path):
    paths = ProjectPaths(tmp_path / "data", tmp_path / "runs", tmp_path / "models", tmp_path / "releases", tmp_path / "exports")
    bundle = paths.scout_best / BUNDLE_NAME
    assert _promote(paths, _run(tmp_path, "a"), {"median_km": 5.0, "p90_km": 9.0}, {"median_km": 3.0})
    assert json.loads(bundle.read_text())["run"] == "a"
    # Better on test, worse on val: selecting on test would pick it; it must not.
    assert not _promote(paths, _run(tmp_path, "b"), {"median_km": 6.0, "p90_km": 9.0}, {"median_km": 0.1})
    assert json.loads(bundle.read_text())["run"] == "a"
    # Better on val, worse on test: it wins.
    assert _promote(paths, _run(tmp_path, "c"), {"median_km": 4.0, "p90_km": 9.0}, {"median_km": 30.0})
    record = json.loads((paths.scout_best / "metrics.json").read_text())
    assert json.loads(bundle.read_text())["run"] == "c" and record["run_id"] == "c"
    assert record["val"][AFTER]["median_km"] == 4.0 and record["test"][AFTER]["median_km"] == 30.0
    assert not _promote(paths, _run(tmp_path, "d"), {}, {"median_km": 0.01})  # no val median: never promoted
