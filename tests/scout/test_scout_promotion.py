"""Scout-sniper promotion is the one rule of `artifacts.best.promote`: passed gates, then val, never test."""

from __future__ import annotations

import json

from geolocate.artifacts.best import promote
from geolocate.paths import ProjectPaths
from geolocate.scout.bundle import BUNDLE_NAME
from geolocate.scout.evaluate import AFTER, scout_default


def _run(tmp_path, name: str):
    root = tmp_path / "runs" / name
    root.mkdir(parents=True)
    (root / BUNDLE_NAME).write_text(json.dumps({"run": name}))
    return root


def _promote(paths, root, val: dict, gates_pass: bool = True) -> bool:
    return promote(scout_default(root, paths), val, gates_pass, paths).promoted


def test_the_better_val_wins_and_a_failed_run_never_does(tmp_path):
    paths = ProjectPaths(tmp_path / "data", tmp_path / "runs", tmp_path / "models", tmp_path / "releases", tmp_path / "exports")
    bundle = paths.scout_best / BUNDLE_NAME
    # Failed gates: kept as a run, never the default, however good its val figures
    result = promote(scout_default(_run(tmp_path, "failed"), paths), {"median_km": 0.1, "p90_km": 0.2}, False, paths)
    assert not result.promoted and "failed its gates" in result.why and not bundle.exists()
    assert _promote(paths, _run(tmp_path, "a"), {"median_km": 5.0, "p90_km": 9.0})
    assert json.loads(bundle.read_text())["run"] == "a"
    assert not _promote(paths, _run(tmp_path, "b"), {"median_km": 6.0, "p90_km": 9.0})  # worse on val
    assert json.loads(bundle.read_text())["run"] == "a"
    assert _promote(paths, _run(tmp_path, "c"), {"median_km": 4.0, "p90_km": 9.0})
    record = json.loads((paths.scout_best / "metrics.json").read_text())
    assert json.loads(bundle.read_text())["run"] == "c" and record["run_id"] == "c"
    assert record["val"][AFTER]["median_km"] == 4.0 and "test" not in record  # ranked on val only
    assert scout_default(_run(tmp_path, "e"), paths).holder() == "c"
    assert not _promote(paths, _run(tmp_path, "d"), {})  # no val median: never promoted (and no error)
