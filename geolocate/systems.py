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
    """`batch` and `demo` run the single-photo pipeline (cells → split → sanity → train → predict a photo).

    A four-view config is refused in one line, before any step runs, rather than reaching v1's trainer.
    """
    if system_of(cfg) == SCOUT_SNIPER:
        raise UserError(f"`geolocate {command}` runs the single-photo pipeline, and profile {cfg.profile or '?'} trains the "
                        "four-view scout-sniper: run `geolocate synth` (or fetch / import-locations), `prepare`, "
                        "`locations`, `regions`, `train` and `evaluate` instead")


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


def predicts_views(model_dir: Path | None, views_given: bool) -> bool:
    """Whether `predict` runs the scout-sniper: views were given, or the model named is a scout-sniper one."""
    return views_given or (model_dir is not None and Path(model_dir).is_dir() and system_of_run(model_dir) == SCOUT_SNIPER)
