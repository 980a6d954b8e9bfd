"""What a checkpoint reference means: "best", "latest", a run, a release, a tag, a file or a stem.

`predict --checkpoint`, `evaluate`, `freeze` and `export` all name checkpoints the same way; this
module turns any of those forms into the stem of a `<stem>.safetensors` + `<stem>.json` pair.
"""

from __future__ import annotations

from pathlib import Path

from geolocate.artifacts.rundir import resolve_run
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths, slug

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
CHECKPOINT_SUFFIXES = (".safetensors", ".json", *PICKLE_SUFFIXES)
HOW_TO_CREATE = "train one with `geolocate train`"
# Files that travel with a checkpoint pair (same stem; tied to its weights_id): the exported
# ONNX graph (`export-model`, `freeze`) and the retrieval index of its train photos (`evaluate`).
GRAPH_SUFFIX = ".onnx"
INDEX_SUFFIX = ".index.safetensors"
COMPANION_SUFFIXES = (GRAPH_SUFFIX, INDEX_SUFFIX)


def file_of(stem: Path | str, suffix: str) -> Path:
    """`<stem><suffix>`; unlike `with_suffix` it keeps dots in the stem (`model-v1.0`)."""
    return Path(f"{stem}{suffix}")


def resolve_checkpoint(ref: Path | str, project_paths: ProjectPaths | None = None) -> Path:
    """The stem of the checkpoint `ref` names.

    Accepted: a `.safetensors`, `.json` or legacy state-dict file; a stem; a run directory
    (its `best`); `runs/latest` or "latest"; a run id; a release directory (its `model`) or tag;
    "best" (the global best, `models/best`).

    Raises:
        UserError: nothing there, saying how to create it.
    """
    paths = project_paths or _default_paths()
    text = str(ref)
    if text == "best":
        stem = paths.models / "best"
        if not file_of(stem, ".json").is_file():
            raise UserError(f"no global best model yet: looked for {file_of(stem, '.json')} in {Path.cwd()}; "
                            f"{_nearby_best(paths) or why_no_default(paths)}")
        return stem
    path = Path(ref)
    if text == "latest" or (path.name == "latest" and not path.exists()):  # also `runs/latest` without symlinks
        return _stem_in_dir(resolve_run("latest", paths).root, ref)
    if path.suffix in CHECKPOINT_SUFFIXES and path.is_file():
        return _stem_with_sidecar(path.parent / path.stem, ref)
    if path.is_dir():
        return _stem_in_dir(path, ref)
    if file_of(path, ".json").is_file():
        return path
    for candidate in _named(text, paths):
        if candidate.is_dir():
            return _stem_in_dir(candidate, ref)
    raise UserError(
        f"no checkpoint at {text!r}: expected a .safetensors/.json file, a run directory, a release "
        f"directory, 'latest' or 'best'; {HOW_TO_CREATE}"
    )


def why_no_default(paths: ProjectPaths, default: str | None = None) -> str:
    """Which run is newest and why it is not the default model, with what to do (predict's message).

    A run becomes the default only when it passed its gates and beat the incumbent on val
    (`best.promote`); this reads the newest run's `metrics.json` to say which step stopped it.
    """
    default = default or f"{paths.models}/best"
    try:
        run = resolve_run("latest", paths)
    except UserError:
        return HOW_TO_CREATE
    summary = run.read_metrics()
    use = f"pass --checkpoint {run.root} to use it anyway"
    if summary is None:
        return f"the newest run {run.run_id} has not been evaluated: `geolocate evaluate --run {run.run_id}`, or {use}"
    if not summary.get("gates_pass"):
        failed = ", ".join(g["name"] for g in summary.get("gates") or [] if not g.get("passed")) or "no gate measured"
        return f"the newest run {run.run_id} failed its gates ({failed}), so it is not the default ({default}); {use}"
    why = (summary.get("promotion") or {}).get("why") or "was not promoted"
    return f"the newest run {run.run_id} {why}; {use}"


def _nearby_best(paths: ProjectPaths) -> str | None:
    """A global best one directory down (the demo's `demo-run/models/best`), as the --model to pass."""
    models = paths.models if not paths.models.is_absolute() else None
    found = sorted(Path.cwd().glob(f"*/{models}/best.json")) if models else []
    if not found:
        return None
    stem = found[0].relative_to(Path.cwd()).with_suffix("")
    return f"there is one in {stem.parent.parent}/: pass --checkpoint {stem}"


def _stem_in_dir(directory: Path, ref: object) -> Path:
    for name in ("best", "model", "last"):  # run dir → best (else last); release dir → model
        if file_of(directory / name, ".json").is_file():
            return directory / name
    raise UserError(f"{directory} (from {str(ref)!r}) holds no checkpoint (best.json or model.json); {HOW_TO_CREATE}")


def _stem_with_sidecar(stem: Path, ref: object) -> Path:
    if not file_of(stem, ".json").is_file():
        raise UserError(
            f"{ref} has no sidecar {file_of(stem, '.json')}: a checkpoint needs one to say which model it is; "
            f"{HOW_TO_CREATE}"
        )
    return stem


def _named(text: str, paths: ProjectPaths) -> list[Path]:
    """A bare run id or release tag, looked up in the project's directories."""
    name = slug(text)
    return [paths.runs / name, paths.releases / name] if name and "/" not in text else []


def _default_paths() -> ProjectPaths:
    from geolocate.config import PathsConfig

    return ProjectPaths.from_config(PathsConfig())
