"""The scout-sniper bundle: what a run's phases produced, and how their outputs combine.

`<run>/scout_sniper.json` names the trained scouts and the sniper (each a self-describing
safetensors + JSON pair beside it, whose sidecar holds the regions with their train centroids,
the preprocessing and the model kwargs) and the ensemble weights with their val log-loss. `combine` is the one place where scout logits become an ensemble, a
top-1 region, a confidence and a position before and after the sniper: training, evaluation and
prediction all call it, so they cannot disagree.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geolocate import atomic, config
from geolocate.errors import UserError
from geolocate.scout.bundle_schema import FORMAT, SCOUT_PHASES, SNIPER, checked_bundle  # what a bundle may say

BUNDLE_NAME = "scout_sniper.json"
PHASES = config.SCOUT_SNIPER_PHASES
NEIGHBOURS_MODEL = "sniper_neighbours"  # the sidecar's model name of a `NeighbourSniper`
RETRIEVAL_MODEL = "sniper_retrieval"  # … and of a `RetrievalSniper`


def bundle_path(root: Path) -> Path:
    return Path(root) / BUNDLE_NAME


def read_bundle(root: Path) -> dict:
    """The bundle of a run (or a promoted copy); an empty one when no phase has finished yet."""
    path = bundle_path(root)
    if not path.is_file():
        return {"format": FORMAT, "version": 1, "scouts": [], "weights": None, "sniper": None}
    return checked_bundle(path)  # parsed and validated: a bundle may have been edited


def update_bundle(root: Path, **fields) -> dict:
    doc = {**read_bundle(root), **fields}
    atomic.write_json(bundle_path(root), doc)
    return doc


def phase_done(root: Path, phase: str) -> bool:
    """Whether `phase` left its output in `root` (a checkpoint pair, or the ensemble weights)."""
    if phase == "ensemble":
        return bool(read_bundle(root).get("weights"))
    return (Path(root) / f"{phase}.json").is_file() and (Path(root) / f"{phase}.safetensors").is_file()


def require_bundle(root: Path) -> dict:
    """A complete bundle (scouts, ensemble weights, sniper) or a UserError saying which phase is missing."""
    doc = read_bundle(root)
    missing = [p for p in PHASES if p != "scout-convnext" and not phase_done(root, p)]
    if missing:
        raise UserError(f"{root} has no {', '.join(missing)} yet; run `geolocate train --phase all` (or --resume it)")
    return doc


def copy_bundle(source: Path, target: Path, before_bundle=None) -> list[str]:
    """Copy a run's phase checkpoints, then its bundle file last (the bundle makes a copy complete).

    `before_bundle` runs between the two (a promotion records its score there). Returns the
    names of the phases copied.
    """
    from geolocate.artifacts.checkpoint import copy_checkpoint

    copied = [phase for phase in (*SCOUT_PHASES, SNIPER) if (Path(source) / f"{phase}.json").is_file()]
    for phase in copied:
        copy_checkpoint(Path(source) / phase, Path(target) / phase)
    if before_bundle is not None:
        before_bundle()
    tmp = Path(target) / f".{BUNDLE_NAME}.tmp"
    shutil.copyfile(bundle_path(source), tmp)
    tmp.replace(bundle_path(target))
    return copied


@dataclass
class Combined:
    """The ensemble's answer for each location."""

    logits: np.ndarray  # [L, C] ensemble logits
    probs: np.ndarray  # [L, C]
    top1: np.ndarray  # [L] region index
    confidence: np.ndarray  # [L] probability of the top-1 region
    before: np.ndarray  # [L, 2] position before the sniper (the bundle's position mode, see `combine`)
    after: np.ndarray | None  # [L, 2] after the sniper (None without one)


def ensemble_of(logits: list[np.ndarray], weights: list[float]) -> np.ndarray:
    from geolocate.train.ensemble import ensemble_logits

    return ensemble_logits([np.asarray(z, dtype=np.float64) for z in logits], weights)


def combine(logits: list[np.ndarray], fused: list[torch.Tensor], weights: list[float], centroids: np.ndarray,
            sniper: torch.nn.Module | None = None, position: str = "top1", topk: int = 5) -> Combined:
    """Ensemble the scouts' logits, place each location (`position`: the top-1 region's centroid, the
    probability-weighted mean or the geometric median of the top-`topk` regions' centroids:
    `evaluate.position`) and let the sniper move it (val locations: inside `models.held_out.held_out`,
    so that an index sniper never finds them in itself)."""
    from geolocate.evaluate.metrics import softmax
    from geolocate.evaluate.position import predicted_positions
    from geolocate.models.sniper import SniperInputs, sniper_positions

    z = ensemble_of(logits, weights)
    probs = softmax(z)
    top1 = probs.argmax(axis=1)
    confidence = probs[np.arange(len(top1)), top1]
    before = np.stack(predicted_positions(probs, centroids, position, topk), axis=1) if len(top1) else np.zeros((0, 2))
    after = None
    if sniper is not None and len(top1):
        inputs = SniperInputs(torch.cat(fused, dim=1).float(), torch.as_tensor(top1), torch.as_tensor(confidence).float(),
                              torch.as_tensor(before), torch.as_tensor(before), torch.as_tensor(probs))
        sniper.eval()
        with torch.inference_mode():
            after = sniper_positions(sniper, inputs).numpy()
    return Combined(z, probs, top1, confidence, before, after)


def position_of(bundle: dict) -> dict:
    """`combine`'s position arguments recorded by the ensemble phase (top-1 for older bundles)."""
    return {"position": bundle.get("position") or "top1", "topk": int(bundle.get("position_topk") or 5)}


def tta_crops(bundle: dict) -> int:
    """Crops per view when the ensemble phase kept the test-time views (bundle `tta`), else 0: one centre crop."""
    from geolocate.artifacts.sidecar_schema import TtaRecord

    record = bundle.get("tta")
    return TtaRecord.model_validate(record).crops_run if record else 0  # the single-photo sidecar's reading


def load_sniper(stem: Path):
    """The sniper of a checkpoint pair (it is not a registry model: its sidecar holds its kwargs)."""
    from geolocate.artifacts.checkpoint import load_checkpoint
    from geolocate.evaluate.retrieval_sniper import RetrievalSniper
    from geolocate.models.sniper import NeighbourSniper, SniperRegressor

    def factory(name, num_classes=0, pretrained=False, **kwargs):
        return {NEIGHBOURS_MODEL: NeighbourSniper, RETRIEVAL_MODEL: RetrievalSniper}.get(name, SniperRegressor)(**kwargs)

    return load_checkpoint(stem, factory=factory)
