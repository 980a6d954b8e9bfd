"""What every scout-sniper phase, its evaluation and the seeds share: one run's context and the
scouts' outputs over cached features (each scout is loaded from its checkpoint once for the sides
still missing, then memoised).

A scout's outputs have two sides (`evaluate.tta.SIDES`): `plain`, every view one centre crop, and
`tta`, where each view of a val or test location is the mean of its test-time views' features
(`data.tta`; train always stays plain). The ensemble phase chooses once (`eval.tta`) and records it
in the bundle; every later reader (the sniper's val, evaluation) gets the side the bundle names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from geolocate.config import GeolocateConfig
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths


@dataclass
class PhaseContext:
    """What every phase of one run reads: config, data, the run directory, memoised scout outputs."""

    cfg: GeolocateConfig
    paths: ProjectPaths
    root: Path
    frame: pl.DataFrame
    regions: pl.DataFrame
    tta_outputs: dict = field(default_factory=dict)  # phase → {val, test: (logits, fused)}, test-time views averaged
    outputs: dict = field(default_factory=dict)  # phase → {split: (logits, fused)}
    memo: dict = field(default_factory=dict)  # what one run computes once: frozen view embeddings, the val bar

    @property
    def run_id(self) -> str:
        return self.root.name


def scout_model_name(cfg: GeolocateConfig, phase: str) -> tuple[str, Path | None]:
    """Registered model and local weights of a scout phase."""
    if phase == "scout-clip":
        return cfg.model.name, cfg.model.weights
    return cfg.scout.second_model, cfg.scout.second_weights


def build_scout(cfg: GeolocateConfig, phase: str, num_classes: int):
    """A multi-view classifier (frozen backbone + fusion head) for `phase`, seeded."""
    from geolocate.train.setup import build_net, seed_everything

    seed_everything(cfg.train.seed)
    try:
        return build_net(cfg, num_classes, scout_model_name(cfg, phase), views=4)
    except UserError as exc:
        if phase == "scout-clip":
            raise
        raise UserError(f"second scout: {_second_scout_keys(str(exc))}") from None


# The weight loaders name the first model's keys; for the second scout the user sets these instead.
_SECOND_SCOUT_KEYS = (("model.weights (or --weights)", "scout.second_weights"), ("model.weights", "scout.second_weights"),
                      ("model.name", "scout.second_model"))


def _second_scout_keys(message: str) -> str:
    """`message` with the first scout's config keys replaced by the second scout's."""
    for first, second in _SECOND_SCOUT_KEYS:
        message = message.replace(first, second)
    return message


def trains_backbone(cfg: GeolocateConfig) -> bool:
    """Whether some backbone weights train (then the scout reads images, not cached features)."""
    return not cfg.model.freeze_backbone or bool(cfg.model.train_last_n_blocks)


def scout_views(ctx: PhaseContext, model, name: str, crops: int = 0):
    """The run's locations as cached features of `model`'s backbone, one `ViewSet` per split; with
    `crops`, only val's and test's, each view the mean of its test-time views (train is empty)."""
    from geolocate.models.features import FeatureCache
    from geolocate.data.views import split_views, view_files

    frame = ctx.frame.filter(pl.col("split") != "train") if crops else ctx.frame
    files = view_files(frame, ctx.paths.data)
    cache = FeatureCache(ctx.paths.data.features, name, model, lock=ctx.paths.data.lock, crops=crops)
    # The backbone pass is the only heavy step of scout-sniper training: it runs on train.device
    # (auto: the GPU when there is one).
    from geolocate.device import resolve_device

    device = str(resolve_device(ctx.cfg.train.device))
    rows, feats = cache.features(model, files, ctx.cfg.train.batch_size, device)
    model.to("cpu")
    return split_views(frame, rows, feats), cache.fingerprint


def scout_outputs(ctx: PhaseContext, phase: str, side: str | None = None) -> dict:
    """{split: (logits, fused)} of a trained scout, memoised: val and test from `side` (`plain` or
    `tta`; None: the one the run's bundle chose), train always plain."""
    from geolocate.evaluate.tta import CROPS
    from geolocate.scout.bundle import read_bundle, tta_crops

    crops = tta_crops(read_bundle(ctx.root)) if side is None else (CROPS if side == "tta" else 0)
    if phase not in ctx.outputs or (crops and phase not in ctx.tta_outputs):
        _compute_outputs(ctx, phase, crops)
    return {**ctx.outputs[phase], **ctx.tta_outputs[phase]} if crops else ctx.outputs[phase]


def _compute_outputs(ctx: PhaseContext, phase: str, crops: int) -> None:
    """The sides of a scout's outputs not memoised yet, from one load of its checkpoint: the plain
    side, and with `crops` the test-time side of val and test (each view the mean of its views)."""
    from contextlib import nullcontext

    import torch

    from geolocate.artifacts.checkpoint import load_checkpoint
    from geolocate.train.view_heads import split_outputs

    plain_missing = phase not in ctx.outputs
    # Loading a scout draws on torch's global RNG. A load for the test-time side alone is forked, so
    # a run draws the same with eval.tta on or off (a load for both sides draws what the plain one did).
    with nullcontext() if plain_missing else torch.random.fork_rng(devices=[]):
        model, sidecar = load_checkpoint(ctx.root / phase)
    name = sidecar["model"]["name"]
    if plain_missing:
        views, _ = scout_views(ctx, model, name)
        ctx.outputs[phase] = split_outputs(model.head, views)
    if crops and phase not in ctx.tta_outputs:
        views, _ = scout_views(ctx, model, name, crops)
        ctx.tta_outputs[phase] = split_outputs(model.head, {split: views[split] for split in ("val", "test")})


def frozen_view_vectors(ctx: PhaseContext) -> dict | None:
    """View image id → embedding by the first scout's backbone before any training (what the k-NN
    baselines and the val bar read; each caller checks `eval.knn_baseline`); None when the backbone
    cannot be built. Once per run."""
    if "vectors" not in ctx.memo:
        from geolocate.data.views import view_files
        from geolocate.evaluate.baseline_data import frozen_embeddings

        ctx.memo["vectors"] = frozen_embeddings(ctx.cfg, ctx.paths, view_files(ctx.frame, ctx.paths.data))
    return ctx.memo["vectors"]


def location_pool(frame: pl.DataFrame, vectors: dict | None):
    """Locations as a baseline `Pool`; with `vectors`, only those with at least one embedded view,
    each the mean of its L2-normalised views."""
    import numpy as np

    from geolocate.evaluate.baselines import Pool, l2_normalise
    from geolocate.schemas import VIEWS

    pool = Pool(frame["label"].to_numpy().astype(np.int64), frame.select("lat", "lon").to_numpy())
    if vectors is None:
        return pool
    views = [[vectors[i] for i in ids if i in vectors] for ids in frame.select(VIEWS).rows()]
    keep = [r for r, found in enumerate(views) if found]
    embeddings = np.stack([l2_normalise(np.stack(views[r])).mean(axis=0) for r in keep]) if keep else None
    return Pool(pool.labels[keep], pool.latlon[keep], embeddings)


def location_val_bar(ctx: PhaseContext) -> tuple[float, float]:
    """The bar every choice of the run ranks against on val (`evaluate.baselines.target_bar`): the
    trivial baselines drawn from the train locations, and 5-NN over their frozen embeddings."""
    if "val_bar" not in ctx.memo:
        from geolocate.evaluate.baselines import target_bar
        from geolocate.scout.regions import centroids_of

        frames = [ctx.frame.filter(pl.col("split") == split) for split in ("train", "val")]
        vectors = frozen_view_vectors(ctx) if ctx.cfg.eval.knn_baseline else None
        embedded = tuple(location_pool(f, vectors) for f in frames) if vectors is not None else None
        ctx.memo["val_bar"] = target_bar(*(location_pool(f, None) for f in frames), centroids_of(ctx.regions), embedded)
    return ctx.memo["val_bar"]
