"""`geolocate freeze --run latest --tag v1.0`: turn a run that passed its gates into a release.

A release is `releases/<tag>/`: the run's best checkpoint as `model.safetensors` + `model.json`,
the classes (`cells.parquet`), the resolved config, the report, plots and metrics, `RELEASE.json`
(what was frozen, when, from which run, whether gates were forced) and `SHA256SUMS`. It is built
in a temporary directory and renamed into place, so a release is complete or absent. A tag is
never overwritten, not even with `--force` (which only overrides failing gates, and is recorded):
a release others may already use must not change under them. A snapshot export goes with it, and
an annotated git tag when the working directory is a git repository (never pushed).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from geolocate.artifacts.checkpoint import copy_checkpoint
from geolocate.artifacts.digest import format_sha256sums, sha256_file
from geolocate.artifacts.export import ExportResult, confined, run_export
from geolocate.artifacts.gittag import GitTag, head_commit, tag_release
from geolocate.artifacts.resolve import file_of
from geolocate.artifacts.rundir import RunDir, resolve_run
from geolocate.artifacts.secret_scan import check_text
from geolocate.artifacts.versions import library_versions
from geolocate.atomic import sweep_temps, temp_name, write_json, write_text
from geolocate.config import GeolocateConfig
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths, safe_name

FORMAT = "geolocate.release"
VERSION = 1
_TEXT_COPIES = ("REPORT.md", "metrics.json")


@dataclass(frozen=True)
class ReleaseModel:
    """How one system's trained model goes into a release (the `systems` seam picks one).

    `require(run)` raises a UserError when the run has nothing to release; `copy(run, target,
    paths)` writes the model files into the release being built and returns what RELEASE.json
    records of it: {model, metrics, data_fingerprint, ...}.
    """

    require: Callable[[RunDir], None]
    copy: Callable[[RunDir, Path, ProjectPaths], dict[str, Any]]


@dataclass
class FreezeResult:
    """What `run_freeze` did."""

    release: Path
    tag: str
    run_id: str
    forced: bool
    failing_gates: list[str]
    export: Path
    git: GitTag
    files: list[str] = field(default_factory=list)
    export_sha256: str = ""


def run_freeze(
    cfg: GeolocateConfig,
    project_paths: ProjectPaths,
    run_ref: str,
    tag: str,
    force: bool = False,
    repo_dir: Path | None = None,
    now: datetime | None = None,
    model: ReleaseModel | None = None,
    git_tag: bool = True,
) -> FreezeResult:
    """Freeze the run `run_ref` as `releases/<tag>/`, export a snapshot, tag git.

    Raises:
        UserError: the tag exists, the run has no best checkpoint, or its gates did not all
            pass and `force` is off.
    """
    now = now or datetime.now(timezone.utc)
    model = model or CHECKPOINT_RELEASE
    run = resolve_run(run_ref, project_paths)
    tag = safe_name(tag, "tag")
    release = project_paths.release(tag)
    if release.exists():
        raise UserError(f"{release} already exists and releases are never overwritten; choose a new tag")
    model.require(run)
    _require_own_verdict(run)
    gates = read_gates(run, required=not force)
    failing = [g["name"] for g in gates if not g["passed"]] or ([] if gates else ["(no gates measured)"])
    if failing and not force:
        raise UserError(
            f"run {run.run_id} did not pass its gates ({', '.join(failing)} FAIL); improve it, or freeze anyway "
            f"with --force (recorded in RELEASE.json)"
        )
    export = run_export(cfg, project_paths, now=now, run_ref=str(run.root))
    record = _record(run, tag, now, force, gates, failing, export, repo_dir)
    files = _build(run, release, project_paths, record, model)
    git = (tag_release(tag, f"geolocate release {tag}: run {run.run_id}\nexport {export.path.name} sha256 {export.sha256}", repo_dir)
           if git_tag else GitTag("skipped", "not tagged (--no-tag)"))
    return FreezeResult(release, tag, run.run_id, bool(failing), failing, export.path, git, files, export.sha256)


def _require_own_verdict(run: RunDir) -> None:
    """Refuse gates measured under another profile (`evaluate --profile X`): a release ships on its own."""
    try:
        judged = json.loads(run.metrics_json.read_text(encoding="utf-8")).get("judged_with")
    except (OSError, ValueError, AttributeError):
        return  # read_gates explains a missing or broken metrics.json
    if isinstance(judged, dict) and judged.get("own") is False:
        raise UserError(f"run {run.run_id} was last evaluated with profile {judged.get('profile')!r}, not its own "
                        f"({judged.get('run_profile')!r}); re-evaluate it on its own terms first: "
                        f"`geolocate evaluate --run {run.run_id}`")


def read_gates(run: RunDir, required: bool = True) -> list[dict[str, Any]]:
    """The run's gates from `metrics.json` as [{name, passed, ...}] (the evaluate stage's rows).

    Raises:
        UserError: no metrics.json (when `required`): the run was never evaluated.
    """
    if not isinstance(confined(run.metrics_json, run.root, f"runs/{run.run_id}/metrics.json"), Path):
        if not required:
            return []
        raise UserError(f"run {run.run_id} has no metrics.json: evaluate it first (`geolocate evaluate --run {run.run_id}`)")
    try:
        gates = json.loads(run.metrics_json.read_text(encoding="utf-8")).get("gates")
    except (ValueError, AttributeError):
        raise UserError(f"{run.metrics_json} is not valid JSON; evaluate the run again") from None
    if isinstance(gates, dict):  # {name: bool | "PASS" | {...}}
        gates = [{"name": name, **(g if isinstance(g, dict) else {"passed": g})} for name, g in gates.items()]
    return [{**g, "passed": _passed(g)} for g in gates or []]


def _passed(gate: dict[str, Any]) -> bool:
    value = gate.get("passed", gate.get("status"))
    return value is True or (isinstance(value, str) and value.upper() == "PASS")


def _record(run, tag, now, force, gates, failing, export: ExportResult, repo_dir) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "tag": tag,
        "run_id": run.run_id,
        "created": now.isoformat(timespec="seconds"),
        "forced": bool(force and failing),
        "failing_gates": failing,
        "gates": gates,
        "export": {"file": export.path.name, "sha256": export.sha256},
        "git_commit": head_commit(repo_dir),
        "versions": library_versions(),
    }


def _build(run: RunDir, release: Path, paths: ProjectPaths, record: dict[str, Any], model: ReleaseModel) -> list[str]:
    """Write the release in a temporary sibling, then rename it into place."""
    release.parent.mkdir(parents=True, exist_ok=True)
    sweep_temps(release.parent)  # a killed freeze's half-built release
    tmp = temp_name(release)
    tmp.mkdir()
    try:
        record.update(model.copy(run, tmp, paths))
        _copy_text(run.config, tmp / "config.json", fallback=json.dumps(record.pop("config", None) or {}, indent=2) + "\n")
        for name in _TEXT_COPIES:
            _copy_text(run.root / name, tmp / name)
        for plot in run.plots:
            if isinstance(confined(plot, run.root, f"runs/{run.run_id}/{plot.name}"), Path):
                shutil.copyfile(plot, tmp / plot.name)
        check_text(json.dumps(record), tmp / "RELEASE.json")
        write_json(tmp / "RELEASE.json", record)
        files = sorted(p.name for p in tmp.iterdir())
        write_text(tmp / "SHA256SUMS", format_sha256sums({name: sha256_file(tmp / name) for name in files}))
        os.rename(tmp, release)  # atomic; fails if another freeze created the tag meanwhile
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {release}: {exc.strerror or exc}") from None
        raise
    return [*files, "SHA256SUMS"]


def _require_best(run: RunDir) -> None:
    if not file_of(run.best, ".json").is_file():
        raise UserError(f"run {run.run_id} has no best checkpoint ({file_of(run.best, '.json')}); train it first with `geolocate train`")


def _copy_best(run: RunDir, target: Path, paths: ProjectPaths) -> dict[str, Any]:
    """The run's best checkpoint as `model.*` (with its ONNX graph), and its classes as `cells.parquet`."""
    for suffix in (".safetensors", ".json"):
        confined(file_of(run.best, suffix), run.root, f"runs/{run.run_id}/best{suffix}")
    sidecar = copy_checkpoint(run.best, target / "model")  # with its retrieval index, when evaluate made one
    return {"model": sidecar.get("model"), "metrics": sidecar.get("metrics"), "data_fingerprint": sidecar.get("data_fingerprint"),
            "cells_source": _write_cells(paths, sidecar, target / "cells.parquet"), "config": sidecar.get("config"),
            "onnx": _export_graph(target / "model")}


def _export_graph(stem: Path) -> dict | None:
    """The release's ONNX graph, exported and parity-checked now (None for a model that has none)."""
    from geolocate.artifacts.onnx_export import export_onnx

    return export_onnx(stem, required=False)


CHECKPOINT_RELEASE = ReleaseModel(require=_require_best, copy=_copy_best)


def _copy_text(source: Path, target: Path, fallback: str | None = None) -> None:
    """Copy a text artifact after checking it holds no token (a release leaves the machine)."""
    if not isinstance(confined(source, source.parent, source.name), Path):
        if fallback is not None:
            write_text(target, fallback)
        return
    text = source.read_text(encoding="utf-8")
    check_text(text, target)
    write_text(target, text)


def _write_cells(paths: ProjectPaths, sidecar: dict[str, Any], target: Path) -> str:
    """The model's classes as `cells.parquet`: the data's table when it still matches the model
    (same cell ids in the same order), else rebuilt from the checkpoint's class list."""
    import polars as pl

    from geolocate import schemas
    from geolocate.atomic import write_parquet

    classes = sidecar.get("classes") or []
    ids = [c["cell_id"] for c in classes]
    if isinstance(confined(paths.data.cells, paths.data.root, "data/cells.parquet"), Path):
        cells = pl.read_parquet(paths.data.cells).sort("cell_id")
        if cells["cell_id"].to_list() == ids:
            write_parquet(target, cells)
            return "data/cells.parquet"
    write_parquet(target, schemas.conform(pl.DataFrame(classes), schemas.CELLS) if classes else schemas.empty(schemas.CELLS))
    return "checkpoint classes"
