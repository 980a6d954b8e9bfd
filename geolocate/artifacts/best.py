"""The global best model across runs: `models/best.safetensors` + `models/best.json`.

A run's best checkpoint replaces it only when it beats it on validation: lower median error in
km, then lower p90 as the tie-break (the card gates on km, not accuracy). The comparison and the
replacement happen under `models/.lock`, so two runs finishing together cannot both win.

Consistency for readers: the pair is replaced weights first, then sidecar, each atomically; both
carry the same fresh `weights_id` and `load_checkpoint` re-reads until the ids agree. A reader
therefore sees the old pair or the new pair, never the weights of one run with the sidecar of
another (see `checkpoint.py`).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from geolocate.artifacts.checkpoint import copy_checkpoint
from geolocate.artifacts.resolve import file_of
from geolocate.atomic import sweep_temps
from geolocate.lock import DataLock
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths

PROMOTE_WAIT_S = 60.0  # promotions are quick: wait for another run's rather than fail


def best_key(val_metrics: Mapping[str, Any] | None) -> tuple[float, float]:
    """(median_km, p90_km) of validation metrics; missing or NaN values rank last."""
    metrics = val_metrics or {}
    return (_number(metrics.get("median_km")), _number(metrics.get("p90_km")))


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.inf
    return number if math.isfinite(number) else math.inf


def current_best(project_paths: ProjectPaths) -> dict[str, Any] | None:
    """The global best's sidecar, or None when there is none yet."""
    from geolocate.artifacts.checkpoint import read_sidecar

    stem = project_paths.models / "best"
    return read_sidecar(stem, project_paths) if file_of(stem, ".json").is_file() else None


def is_current_best(run_id: str, project_paths: ProjectPaths) -> bool:
    """Whether the global best was promoted from run `run_id` (re-evaluating it cannot "beat" it)."""
    sidecar = current_best(project_paths)
    return sidecar is not None and sidecar.get("run_id") == run_id


def beats(candidate: Mapping[str, Any], incumbent: Mapping[str, Any] | None) -> bool:
    """True when `candidate` val metrics are strictly better than `incumbent`'s."""
    return best_key(candidate) < best_key(incumbent)


def maybe_promote(run_best_stem: Path | str, val_metrics: Mapping[str, Any], project_paths: ProjectPaths) -> bool:
    """Make `run_best_stem` the global best if its validation metrics beat the current one.

    Args:
        run_best_stem: the run's best checkpoint (e.g. `RunDir.best`).
        val_metrics: its validation metrics; `median_km` is required, `p90_km` breaks ties.
        project_paths: where `models/` is.

    Returns:
        Whether this run became the global best (REPORT.md says so).
    """
    if math.isinf(best_key(val_metrics)[0]):
        raise UserError(f"cannot rank {run_best_stem}: its validation metrics have no median_km")
    project_paths.models.mkdir(parents=True, exist_ok=True)
    with DataLock(project_paths.models / ".lock", command="promote the global best", wait_s=PROMOTE_WAIT_S):
        sweep_temps(project_paths.models)  # a killed promotion's half-copied files
        incumbent = current_best(project_paths)
        if not beats(val_metrics, _val_of(incumbent)):
            return False
        copy_checkpoint(run_best_stem, project_paths.models / "best", update=lambda s: _stamp(s, val_metrics))
    return True


def _val_of(sidecar: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if sidecar is None:
        return None
    return (sidecar.get("metrics") or {}).get("val")


def _stamp(sidecar: dict[str, Any], val_metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Record the metrics it won with and when, so the next run is compared on the same terms."""
    metrics = dict(sidecar.get("metrics") or {})
    metrics["val"] = {**(metrics.get("val") or {}), **dict(val_metrics)}
    sidecar["metrics"] = metrics
    sidecar["promoted_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return sidecar
