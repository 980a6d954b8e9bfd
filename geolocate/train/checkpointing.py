"""What a run writes each epoch: last and best checkpoints, resume state, metrics.csv."""

from __future__ import annotations

import platform
from typing import Any

import torch

from geolocate import __version__
from geolocate.config import public_dict


def checkpoint_meta(s, epoch: int, metrics: dict, run_id: str) -> dict[str, Any]:
    """The self-describing sidecar: enough to rebuild the model and predict with nothing else."""
    from geolocate.artifacts.digest import data_fingerprint
    from geolocate.artifacts.consistency import split_fingerprint

    net = s.net
    classes = s.classes.select("cell_id", "centroid_lat", "centroid_lon", "city").to_dicts()
    import timm

    return {
        "model": {"name": net.model_name, "kwargs": dict(net.model_kwargs), "num_classes": len(classes)},
        "classes": classes,
        "preprocessing": _preprocessing(net.data_config, s.cfg.data.image_size),
        "temperature": 1.0,
        "position": "top1",
        "weighted_topk": s.cfg.eval.weighted_topk,
        "config": public_dict(s.cfg),
        "metrics": {"val": metrics},
        "versions": {"geolocate": __version__, "torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version()},
        "data_fingerprint": data_fingerprint([s.paths.data.manifest, s.paths.data.labels, s.paths.data.split]),
        "split_fingerprint": split_fingerprint(s.paths.data),
        "epoch": epoch + 1,
        "run_id": run_id,
    }


def _preprocessing(data_config: dict, override: int | None) -> dict:
    size = int(override or data_config["input_size"][-1])
    return {
        "input_size": [3, size, size],
        "mean": [float(x) for x in data_config["mean"]],
        "std": [float(x) for x in data_config["std"]],
        "interpolation": str(data_config.get("interpolation", "bilinear")),
        "crop_pct": float(data_config.get("crop_pct", 0.875)),
    }


def save_epoch(s, run, epoch: int, row: dict, history: list[dict], improved: bool) -> None:
    """Checkpoint `last` (and `best` when val improved), the resume state and metrics.csv."""
    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.artifacts.rundir import point_latest
    from geolocate.artifacts.state import capture_rng_state, save_state

    # metrics.csv first: a kill after the checkpoint then never leaves a run without it, and a
    # resumed run that redoes this epoch replaces the row instead of duplicating it.
    run.append_metrics_row(row)
    val = {k[4:]: v for k, v in row.items() if k.startswith("val_")}
    meta = checkpoint_meta(s, epoch, val, run.run_id)
    first = not run.has_checkpoint
    save_checkpoint(run.last, s.net, meta)
    if first:  # only now is there something to resume or evaluate: `runs/latest` may point here
        point_latest(run.root.parent, run)
    if improved:
        save_checkpoint(run.best, s.net, meta)
    save_state(
        run.state,
        epoch=epoch + 1,
        optimizer_state=s.optimizer.state_dict(),
        scheduler_state=s.scheduler.state_dict(),
        rng_state=capture_rng_state(),
        extra={"scaler": s.scaler.state_dict(), "history": history},
    )
