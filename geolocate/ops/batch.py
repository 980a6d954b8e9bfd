"""`run_batch`: the card's per-batch plan, from cold, resumable.

fetch (or synth) → prepare → cells → split → sanity → train (+ evaluate) → export (verified) →
clean-raw (when asked). A four-view (scout-sniper) profile runs its own middle: fetch (or synth) →
prepare → locations → regions (labels and the split) → train (every phase, then evaluate) →
clean-raw; it has no cells KPI history and no single-photo export. Each step is one library call, as the CLI commands make it. A finished
step is recorded in `data/batches/<batch>.json` with a key of its inputs (`batch_state.py`), so
running the same command again skips what is done and still valid and goes on from the first
step that is not. The first failing step stops the plan with a one-line error naming it. A
training killed mid-run is resumed from its last checkpoint rather than started over.

The data directory is locked (`DataLock`) for the whole plan; the steps that lock it themselves
re-enter the same lock, and another command gets a clear "locked by" error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl

from geolocate.lock import DataLock
from geolocate.config import GeolocateConfig
from geolocate.console import console
from geolocate.errors import UserError
from geolocate.ops.batch_state import BatchState, now_text, step_key
from geolocate.paths import ProjectPaths


@dataclass
class Plan:
    """What to run: the batch, where, and how."""

    cfg: GeolocateConfig
    paths: ProjectPaths
    batch: str
    synthetic: bool = False
    clean_raw: bool = False

    @property
    def four_view(self) -> bool:
        from geolocate.systems import SCOUT_SNIPER, system_of

        return system_of(self.cfg) == SCOUT_SNIPER

    @property
    def steps(self) -> list[str]:
        first = "synth" if self.synthetic else "fetch"
        middle = ["locations", "regions", "train"] if self.four_view else ["cells", "split", "sanity", "train", "export"]
        return [first, "prepare", *middle] + (["clean-raw"] if self.clean_raw else [])


@dataclass
class BatchResult:
    """How each step went ("ran" or "skipped"), the KPI history and the run's gates."""

    batch: str
    steps: list[dict[str, str]] = field(default_factory=list)
    run_id: str | None = None
    export: str | None = None
    kpi_history: pl.DataFrame | None = None
    kpi_figure: Path | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    state_file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        history = self.kpi_history.to_dicts() if self.kpi_history is not None else []
        return {"batch": self.batch, "steps": self.steps, "run_id": self.run_id, "export": self.export,
                "gates": self.gates, "gates_pass": bool(self.gates) and all(g["passed"] for g in self.gates),
                "kpi_history": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in history],
                "kpi_figure": str(self.kpi_figure) if self.kpi_figure else None, "state_file": str(self.state_file)}


def run_batch(plan: Plan) -> BatchResult:
    """Run `plan`'s steps in order, skipping those already done with unchanged inputs.

    Raises:
        UserError: "batch NN stopped at <step>: <why>" from the first failing step, or the data
            directory is locked by another command.
    """
    from geolocate.acquire.catalog import batch_areas

    batch = batch_areas(plan.batch, plan.cfg.fetch.catalog)[0].batch  # validates, and '3' → '03'
    plan.batch = batch
    with DataLock(plan.paths.data.lock, command=f"geolocate batch {batch}"):
        state = BatchState.load(plan.paths, batch)
        result = BatchResult(batch, state_file=state.path)
        for name in plan.steps:
            result.steps.append(_do_step(plan, state, name))
        return _finish(plan, state, result)


def _do_step(plan: Plan, state: BatchState, name: str) -> dict[str, str]:
    record = state.steps.get(name)
    if record and record.get("key") == step_key(name, plan.cfg, plan.paths, record):
        console.print(f"[dim]skip[/] {name}: done {record['finished']} ({record['detail']})")
        return {"step": name, "status": "skipped", "detail": record["detail"]}
    resume_run = _interrupted_run(plan.paths, record) if name == "train" else None
    state.forget(name)
    if name == "train":  # noted before training, so a killed training can be found and resumed
        before = record["latest_before"] if resume_run and record else _latest_run_id(plan.paths)
        state.steps["train"] = {"started": now_text(), "latest_before": before}
        state.save()
    console.print(f"[cyan]→[/] {name}")
    try:
        record = _STEPS[name](plan, resume_run)
    except UserError as exc:
        raise UserError(f"batch {plan.batch} stopped at {name}: {exc}", exc.exit_code) from None
    state.steps[name] = {**record, "finished": now_text()}
    # This step may have rewritten an earlier one's files (split drops untrained classes from
    # cells.parquet): refresh the keys up to here. Later steps keep theirs, to be checked in turn.
    order = plan.steps
    for done in order[: order.index(name) + 1]:
        if "finished" in state.steps.get(done, {}):
            state.steps[done]["key"] = step_key(done, plan.cfg, plan.paths, state.steps[done])
    state.save()
    console.print(f"[green]✓[/] {name}: {record['detail']}")
    return {"step": name, "status": "ran", "detail": record["detail"]}


# ---------------------------------------------------------------- the steps


def _fetch(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.acquire.fetch import run_fetch, select_areas

    areas = select_areas(plan.cfg.fetch.catalog, batch=plan.batch)
    report = run_fetch(plan.cfg.fetch, plan.paths.data, areas)
    if not report.complete:
        boxes = sum(a.boxes_failed + a.boxes_unreachable for a in report.areas)
        photos = sum(a.photos_failed for a in report.areas)
        raise UserError(f"{boxes} search boxes and {photos} photos failed (network or API); run the same command again to retry them")
    new = sum(a.photos_new for a in report.areas)
    return {"detail": f"{new} new photos, {sum(a.photos_skipped for a in report.areas)} already here, {len(areas)} areas",
            "batches": [plan.batch]}


def _synth(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.synth.generate import run_synth

    batches = synthetic_batches(plan.paths, plan.batch)
    # run_synth replaces the whole synthetic set, so earlier synthetic batches are drawn again with
    # this one (same seed, same look): the KPI history then grows batch after batch, as with fetch.
    settings = plan.cfg.synth.model_copy(update={"batches": batches, "n_photos": plan.cfg.synth.n_photos * len(batches)})
    report = run_synth(settings, plan.paths.data, catalog=plan.cfg.fetch.catalog)
    return {"detail": f"{report.photos} synthetic photos in batches {','.join(batches)}", "batches": batches}


def synthetic_batches(paths: ProjectPaths, batch: str) -> list[str]:
    """The batches already drawn synthetically in the manifest, plus `batch`, sorted."""
    from geolocate.manifest import read_manifest

    manifest = read_manifest(paths.data).filter(pl.col("source") == "synthetic")
    return sorted(set(manifest["batch"].drop_nulls().unique().to_list()) | {batch})


def _prepare(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.acquire.prepare import run_prepare

    report = run_prepare(plan.cfg.data, plan.paths.data)
    if report.failed:
        image_id, reason = sorted(report.failed.items())[0]
        raise UserError(f"{len(report.failed)} photos could not be prepared (e.g. {image_id}: {reason}); "
                        "re-fetch them (`geolocate fetch`) or remove them, then run again")
    return {"detail": f"{report.processed} photos processed, {report.already_done} already done"}


def _cells(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.cells import run_cells

    k = run_cells(plan.cfg.cells, plan.paths.data).kpis
    return {"detail": f"{k['classes']} classes, {k['photos']} photos, top class {k['top_class_share']:.1%}"}


def _split(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.split.run import run_split

    photos = run_split(plan.cfg, plan.paths.data).report["photos"]
    return {"detail": " / ".join(f"{name} {photos[name]}" for name in ("train", "val", "test"))}


def _sanity(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.split.sanity import run_sanity

    report = run_sanity(plan.cfg, plan.paths.data)
    report.raise_for_violations()
    return {"detail": f"{len(report.checks)} checks passed"}


def _locations(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.systems import four_view_locations

    table = four_view_locations(plan.cfg, plan.paths.data)
    return {"detail": f"{table.height} four-view locations"}


def _regions(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.systems import four_view_regions

    report = four_view_regions(plan.cfg, plan.paths.data)
    n = report["locations"]
    return {"detail": f"{report['regions']} regions; locations train {n['train']} / val {n['val']} / test {n['test']}"}


def _train(plan: Plan, resume: str | None) -> dict[str, Any]:
    from geolocate.systems import trainer

    if resume:
        console.print(f"resuming the interrupted training run {resume} from its last checkpoint")
    run = trainer(plan.cfg, plan.paths, resume)(plan.cfg, plan.paths, resume=resume)[0]
    test = run.metrics.get("test", {})
    detail = f"run {run.run_id}: test median {test.get('median_km', float('nan')):.2f} km, top-1 {test.get('acc_top1', float('nan')):.1%}"
    return {"detail": detail, "run_id": run.run_id}


def _export(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.artifacts.export import run_export
    from geolocate.artifacts.verify import verify_export

    result = run_export(plan.cfg, plan.paths)
    problems = verify_export(result.path)
    if problems:
        raise UserError(f"{result.path} did not verify: {problems[0]}")
    return {"detail": f"{result.path} ({len(result.members)} files, verified)", "export": str(result.path)}


def _clean_raw(plan: Plan, _resume: str | None) -> dict[str, Any]:
    from geolocate.ops.clean_raw import run_clean_raw

    report = run_clean_raw(plan.paths.data)
    return {"detail": f"deleted {len(report.files)} raw files, {report.bytes / 1e6:.1f} MB freed"}


_STEPS: dict[str, Callable[[Plan, str | None], dict[str, Any]]] = {
    "fetch": _fetch, "synth": _synth, "prepare": _prepare, "cells": _cells, "split": _split,
    "sanity": _sanity, "locations": _locations, "regions": _regions, "train": _train, "export": _export,
    "clean-raw": _clean_raw,
}


def run_step(plan: Plan, name: str) -> str:
    """Run one step of `plan` alone, with no state file, skip or lock; returns its detail line.

    The demo builds its data this way, so it checks exactly what a batch checks.

    Raises:
        UserError: the step failed (unwrapped: the caller names the step).
    """
    return _STEPS[name](plan, None)["detail"]


# ---------------------------------------------------------------- training resume, summary


def _latest_run_id(paths: ProjectPaths) -> str | None:
    from geolocate.artifacts.rundir import resolve_run

    try:
        return resolve_run("latest", paths).run_id
    except UserError:
        return None


def _interrupted_run(paths: ProjectPaths, record: dict[str, Any] | None) -> str | None:
    """The run a killed batch was training: started after the batch noted `latest_before`, with a
    checkpoint to resume from and no final metrics."""
    if not record or "started" not in record or "finished" in record:
        return None
    latest = _latest_run_id(paths)
    if latest is None or latest == record.get("latest_before"):
        return None
    run = paths.run(latest)
    return latest if (run / "state.pt").is_file() and not (run / "metrics.json").is_file() else None


def _finish(plan: Plan, state: BatchState, result: BatchResult) -> BatchResult:
    from geolocate.artifacts.freeze import read_gates
    from geolocate.artifacts.rundir import RunDir
    from geolocate.ops.kpi import run_kpi

    result.run_id = state.steps.get("train", {}).get("run_id")
    result.export = state.steps.get("export", {}).get("export")
    if not plan.four_view:  # the KPI history is the cells stage's; four views label locations with regions
        kpi = run_kpi(plan.paths.data, plan.cfg.cells.max_dominance)
        result.kpi_history, result.kpi_figure = kpi.history, kpi.figure
    if result.run_id:
        result.gates = read_gates(RunDir(plan.paths.run(result.run_id)), required=False)
    return result
