"""The offline demo: synth → prepare → cells → split → sanity → train → evaluate → predict.

Everything runs in `workdir` on the tiny profile, so a fresh machine shows the whole pipeline
(and a real report with gates) in a few minutes on the CPU, without a token or a network.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import polars as pl

from geolocate.config import GeolocateConfig, load_config
from geolocate.console import console, step
from geolocate.errors import UserError
from geolocate.lock import DataLock
from geolocate.paths import ProjectPaths


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_demo(workdir: Path, profile: str = "tiny", overrides: list[str] | None = None) -> dict:
    """Run the whole pipeline in `workdir`; returns the evaluation summary and one prediction."""
    from geolocate.systems import require_single_photo

    started = time.perf_counter()
    with working_directory(workdir):
        cfg = load_config(None, profile, overrides)
        require_single_photo(cfg, "demo")
        paths = ProjectPaths.from_config(cfg.paths)
        with DataLock(paths.data.lock, command="geolocate demo"):  # its data steps, like `batch`
            prepare_data(cfg, paths)
        summary = _train(cfg, paths)
        prediction = _predict_one(paths)
    summary["prediction"] = prediction
    # From where the user typed `geolocate demo`: the demo's photo and model, so the printed
    # `geolocate predict` command works as pasted (the global best lives inside `workdir`).
    summary["predict_example"] = str(workdir / prediction["file"])
    summary["model"] = str(workdir / paths.models / "best")
    summary["seconds"] = time.perf_counter() - started
    return summary


def prepare_data(cfg: GeolocateConfig, paths: ProjectPaths) -> None:
    """synth → prepare → cells → split → sanity: the batch plan's own steps (`ops.batch.run_step`).

    synth is called directly: the batch step redraws every earlier synthetic batch under one
    batch name, while the demo draws `cfg.synth` exactly as configured.
    """
    from geolocate.ops.batch import Plan, run_step
    from geolocate.synth.generate import run_synth

    with step(f"synth: {cfg.synth.n_photos} synthetic street photos"):
        run_synth(cfg.synth, paths.data, catalog=cfg.fetch.catalog)
    plan = Plan(cfg, paths, batch="demo", synthetic=True)  # the batch name is read by fetch/synth only
    for name, what in _DATA_STEPS:
        with step(f"{name}: {what}"):
            try:
                run_step(plan, name)
            except UserError as exc:
                raise UserError(f"demo stopped at {name}: {exc}", exc.exit_code) from None


_DATA_STEPS = [("prepare", "processed copies for training"), ("cells", "H3 classes"),
               ("split", "grouped by sequence, leakage audit"), ("sanity", "every photo decodes, no leakage")]


def _train(cfg: GeolocateConfig, paths: ProjectPaths) -> dict:
    from geolocate.systems import trainer

    with step(f"train {cfg.model.name} ({cfg.train.epochs} epochs) + evaluate"):
        runs = trainer(cfg, paths)(cfg, paths)
    return {"run_id": runs[0].run_id, "run_dir": runs[0].run_dir, "metrics": runs[0].metrics, "evaluation": runs[0].evaluation}


def _predict_one(paths: ProjectPaths) -> dict:
    """Predict the first test photo with the global best, its true position known."""
    from geolocate.inference.predictor import Predictor

    data = paths.data
    split = pl.read_parquet(data.split).filter(pl.col("split") == "test").sort("image_id").head(1)
    row = split.join(pl.read_parquet(data.manifest), on="image_id").to_dicts()[0]
    photo = data.root / row["processed_path"]
    rows, failures = Predictor.load("best", paths).predict_files([photo], top=5, truth={str(photo): (row["lat"], row["lon"])})
    if failures:
        raise UserError(failures[0].reason)
    return rows[0]
