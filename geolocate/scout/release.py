"""`geolocate freeze` of a scout-sniper run: the bundle (scouts, sniper, ensemble weights) as the model.

A scout-sniper release holds the run's phase checkpoints and `scout_sniper.json` beside the
report, metrics and config, so `geolocate predict --checkpoint releases/<tag> --views …` reads it
like a run; `regions.parquet` holds the regions with their train centroids (the classes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geolocate.artifacts.freeze import ReleaseModel
from geolocate.artifacts.rundir import RunDir
from geolocate.paths import ProjectPaths


def _require_bundle(run: RunDir) -> None:
    from geolocate.scout.bundle import require_bundle

    require_bundle(run.root)


def _copy_bundle(run: RunDir, target: Path, paths: ProjectPaths) -> dict[str, Any]:
    import polars as pl

    from geolocate.artifacts.checkpoint import read_sidecar
    from geolocate.atomic import write_parquet
    from geolocate.scout.bundle import SNIPER, copy_bundle, read_bundle

    copied = copy_bundle(run.root, target)
    sidecar = read_sidecar(target / copied[0])
    write_parquet(target / "regions.parquet", pl.DataFrame(sidecar["classes"]))
    summary = run.read_metrics() or {}
    bundle = read_bundle(target)
    return {"model": {"system": "scout-sniper", "scouts": bundle["scouts"], "weights": bundle["weights"], "sniper": SNIPER},
            "metrics": {**(summary.get("metrics") or {}), "phases": summary.get("phases"),
                        "sniper_gain_median_km": summary.get("sniper_gain_median_km")},
            "data_fingerprint": sidecar.get("data_fingerprint"), "config": sidecar.get("config")}


BUNDLE_RELEASE = ReleaseModel(require=_require_bundle, copy=_copy_bundle)
