"""The default model of each system, and the one rule that makes a run it.

France v1's default is `models/best.safetensors` + `models/best.json`; the scout-sniper's is the
bundle directory `models/scout-sniper/`. `promote` is the only rule for both:

1. a run that failed its gates is kept as a run but never becomes the default (`predict` then
   says which run is newest and why none is the default: `resolve.why_no_default`);
2. a run without a val median cannot be ranked, so it is not promoted either;
3. otherwise it replaces the default when it beats it on validation: lower median km, then
   lower p90 as the tie-break (never on test: that would make the reported test optimistic).

The comparison and the replacement happen under `models/.lock`, so two runs finishing together
cannot both win. A system supplies only how its default is read and written (`DefaultModel`).

Consistency for readers (v1): the pair is replaced weights first, then sidecar, each atomically;
both carry the same fresh `weights_id` and `load_checkpoint` re-reads until the ids agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from geolocate.artifacts.checkpoint import copy_checkpoint
from geolocate.artifacts.resolve import file_of
from geolocate.atomic import sweep_temps
from geolocate.lock import DataLock
from geolocate.paths import ProjectPaths

PROMOTE_WAIT_S = 60.0  # promotions are quick: wait for another run's rather than fail


@dataclass(frozen=True)
class DefaultModel:
    """How one system's default model is found, ranked and replaced."""

    name: str  # where it lives, for messages ("models/best")
    incumbent_val: Callable[[], Mapping[str, Any] | None]  # the current default's val metrics (None: none yet)
    install: Callable[[Mapping[str, Any]], None]  # copy the run's model in, recording the val metrics it won with
    holder: Callable[[], str | None] = lambda: None  # the run id the current default came from


@dataclass(frozen=True)
class Promotion:
    """Whether a run became its system's default, and why (one sentence for REPORT.md and the terminal)."""

    promoted: bool
    why: str


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


def beats(candidate: Mapping[str, Any], incumbent: Mapping[str, Any] | None) -> bool:
    """True when `candidate` val metrics are strictly better than `incumbent`'s."""
    return best_key(candidate) < best_key(incumbent)


def promote(default: DefaultModel, val_metrics: Mapping[str, Any], gates_pass: bool, paths: ProjectPaths) -> Promotion:
    """Make a run `default` when it passed its gates and beats the current one on val (the rule above)."""
    if not gates_pass:
        return Promotion(False, f"failed its gates: kept as a run, not promoted to {default.name}")
    if math.isinf(best_key(val_metrics)[0]):
        return Promotion(False, f"has no val median km to rank it: not promoted to {default.name}")
    paths.models.mkdir(parents=True, exist_ok=True)
    with DataLock(paths.models / ".lock", command=f"promote {default.name}", wait_s=PROMOTE_WAIT_S):
        sweep_temps(paths.models)  # a killed promotion's half-copied files
        if not beats(val_metrics, default.incumbent_val()):
            return Promotion(False, f"passed its gates but did not beat {default.name} on val")
        default.install(val_metrics)
    return Promotion(True, f"became the default model ({default.name})")


# ---------------------------------------------------------------- France v1: models/best.*


def current_best(project_paths: ProjectPaths) -> dict[str, Any] | None:
    """The global best's sidecar, or None when there is none yet."""
    from geolocate.artifacts.checkpoint import read_sidecar

    stem = project_paths.models / "best"
    return read_sidecar(stem, project_paths) if file_of(stem, ".json").is_file() else None


def is_current_best(run_id: str, project_paths: ProjectPaths) -> bool:
    """Whether the global best was promoted from run `run_id` (re-evaluating it cannot "beat" it)."""
    sidecar = current_best(project_paths)
    return sidecar is not None and sidecar.get("run_id") == run_id


def checkpoint_default(run_best_stem: Path | str, project_paths: ProjectPaths) -> DefaultModel:
    """France v1's default: the run's best checkpoint pair copied to `models/best.*`."""

    def install(val_metrics: Mapping[str, Any]) -> None:
        copy_checkpoint(run_best_stem, project_paths.models / "best", update=lambda s: _stamp(s, val_metrics))

    def holder() -> str | None:
        return (current_best(project_paths) or {}).get("run_id")

    return DefaultModel(f"{project_paths.models}/best", lambda: _val_of(current_best(project_paths)), install, holder)


def maybe_promote(run_best_stem: Path | str, val_metrics: Mapping[str, Any], project_paths: ProjectPaths, *,
                  gates_pass: bool) -> bool:
    """Make `run_best_stem` the global best by `promote`'s rule; whether it became it."""
    return promote(checkpoint_default(run_best_stem, project_paths), val_metrics, gates_pass, project_paths).promoted


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
