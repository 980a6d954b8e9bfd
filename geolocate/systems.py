"""Which system a config or a run belongs to, and that system's train, evaluate, predict, freeze.

Two systems share the pipeline: France v1 (one photo, one classifier) and the US scout-sniper
(four views, two scouts, an ensemble, a residual sniper; `geolocate/scout/`). A config is a
scout-sniper one when it names a training phase (`train.phase`); a run is what the config it
saved says. Commands ask here once; the shared stages never import `geolocate.scout`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from geolocate.errors import UserError

V1, SCOUT_SNIPER = "v1", "scout-sniper"
_BUNDLE = "scout_sniper.json"  # runs and releases of the scout-sniper hold this file


def system_of(cfg) -> str:
    """The system a resolved config trains."""
    return SCOUT_SNIPER if cfg.train.phase else V1


def system_of_run(root: Path) -> str:
    """The system of a run (or release) directory, from its saved config (its bundle when the config is gone)."""
    from geolocate.artifacts.rundir import RunDir

    try:
        saved = RunDir(Path(root)).read_config()
    except UserError:  # unreadable: the bundle alone still says which system wrote the directory
        saved = None
    return SCOUT_SNIPER if (saved is not None and system_of(saved) == SCOUT_SNIPER) or (Path(root) / _BUNDLE).is_file() else V1


def require_single_photo(cfg, command: str) -> None:
    """`demo` runs the single-photo pipeline (cells → split → sanity → train → predict a photo).

    A four-view config is refused in one line, before any step runs, rather than reaching v1's trainer.
    """
    if system_of(cfg) == SCOUT_SNIPER:
        raise UserError(f"`geolocate {command}` runs the single-photo pipeline, and profile {cfg.profile or '?'} trains the "
                        "four-view scout-sniper: run `geolocate batch --batch 01 --synthetic` with the same profile, or "
                        "`synth` (or fetch / import-locations), `prepare`, `locations`, `regions` and `train` instead")


def four_view_locations(cfg, data):
    """The four-view system's `locations` stage (views grouped into locations), for `ops/` through this seam."""
    from geolocate.scout.locations import run_locations

    return run_locations(cfg, data)


def four_view_regions(cfg, data) -> dict:
    """The four-view system's `regions` stage (labels and the split); its report."""
    from geolocate.scout.regions import run_regions

    return run_regions(cfg, data).report


def _run_root(paths, run_ref: str) -> Path:
    from geolocate.artifacts.rundir import resolve_run

    return resolve_run(run_ref, paths).root


def trainer(cfg, paths, resume: str | None = None) -> Callable:
    """`run_train(cfg, paths, resume=, seeds=)` of the config's system (of the run's, when resuming one)."""
    if (system_of_run(_run_root(paths, resume)) if resume else system_of(cfg)) == SCOUT_SNIPER:
        from geolocate.scout.train import run_train_scout_sniper

        return run_train_scout_sniper
    from geolocate.train.run import run_train

    return run_train


def evaluator(paths, run_ref: str) -> Callable:
    """`run_evaluate(cfg, paths, run_ref)` of the run's system."""
    if system_of_run(_run_root(paths, run_ref)) == SCOUT_SNIPER:
        from geolocate.scout.evaluate import evaluate_scout_sniper

        return evaluate_scout_sniper
    from geolocate.evaluate.run import run_evaluate

    return run_evaluate


def release_model(paths, run_ref: str):
    """What `freeze` copies into a release as the model: v1's best checkpoint or the scout-sniper bundle."""
    if system_of_run(_run_root(paths, run_ref)) == SCOUT_SNIPER:
        from geolocate.scout.release import BUNDLE_RELEASE

        return BUNDLE_RELEASE
    from geolocate.artifacts.freeze import CHECKPOINT_RELEASE

    return CHECKPOINT_RELEASE


def locate_model(ref: str | Path, paths, four_view: bool | None = None) -> tuple[str, Path]:
    """(system, where its model is) for a checkpoint reference, resolved once for the whole command.

    v1 models are a checkpoint stem (`resolve_checkpoint`), scout-sniper ones the directory of their
    bundle. "best" is v1's `models/best`, or the scout-sniper's `models/scout-sniper/` when views are
    given (`four_view`) or when only that one exists.
    """
    from geolocate.artifacts.resolve import resolve_checkpoint

    if str(ref) == "best":
        if four_view or (four_view is None and not (paths.models / "best.json").is_file() and (paths.scout_best / _BUNDLE).is_file()):
            return SCOUT_SNIPER, _scout_bundle("best", paths)
        return V1, resolve_checkpoint(ref, paths)
    folder = _model_dir(ref, paths)
    if folder is not None and system_of_run(folder) == SCOUT_SNIPER:
        return SCOUT_SNIPER, _scout_bundle(folder, paths)
    if four_view:
        from geolocate.errors import UserError

        raise UserError(f"{ref} is a single-photo model: give it photos, not views (--views/--north…/--locations "
                        "need a scout-sniper model, e.g. --profile scout-sniper)")
    return V1, resolve_checkpoint(ref, paths)


def _model_dir(ref: str | Path, paths) -> Path | None:
    """The run or release directory `ref` names, when it names one ("latest", an id, a tag or a path)."""
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.errors import UserError

    path, text = Path(ref), str(ref)
    if path.is_dir():
        return path
    if "/" not in text and (paths.releases / text).is_dir():
        return paths.releases / text
    try:
        return resolve_run(text, paths).root
    except UserError:
        return None


def _scout_bundle(ref, paths) -> Path:
    from geolocate.scout.predict import resolve_bundle

    return resolve_bundle(ref, paths)


def load_predictor(located: tuple[str, Path], engine: str = "auto", device: str = "cpu", paths=None):
    """The predictor of a located model (`locate_model`); the one place a model is opened for prediction.

    Returns a v1 `PhotoPredictor` (ONNX or torch) or a four-view `scout.predict.ScoutSniperPredictor`;
    both give rows in `inference.result.Result`'s fields (`predict_items`) and describe themselves.
    """
    system, where = located
    # A release's integrity (checksums, signature) is checked here, on `where`, before any file is used.
    if system == SCOUT_SNIPER:
        from geolocate.scout.predict import ScoutSniperPredictor

        return ScoutSniperPredictor.load(where, engine=engine, device=device)
    from geolocate.inference.predictor import load_predictor as load_photo_predictor

    return load_photo_predictor(where, engine, device, runs=paths.runs if paths is not None else None)


def predict_inputs(system: str, photos, named: dict, table, truth):
    """What `predict` asks about, read before the model loads: photos for v1, locations (views or a table) for the scout-sniper."""
    if system == SCOUT_SNIPER:
        from geolocate.scout.predict import location_inputs

        return location_inputs(photos, named, table, truth)
    from geolocate.inference.run import photo_inputs

    return photo_inputs(photos or [], truth)
