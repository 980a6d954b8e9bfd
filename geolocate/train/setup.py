"""Everything a training run needs, built once: data, model, loss, optimizer, precision.

`build_session` turns a resolved config into a `Session`; `fit()` (train/loop.py) only runs it.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from geolocate.config import GeolocateConfig
from geolocate.data.dataset import PhotoDataset
from geolocate.data.frames import load_classes, training_frame
from geolocate.data.loaders import make_loader
from geolocate.data.transforms import eval_transform, input_size, train_transform
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths
from geolocate.train.distributed import Dist
from geolocate.train.optim import build_optimizer, build_scheduler


@dataclass
class Session:
    """A training run's live objects."""

    cfg: GeolocateConfig
    paths: ProjectPaths
    dist: Dist
    classes: pl.DataFrame
    centroids: np.ndarray  # [C, 2] lat, lon of each class
    model: nn.Module  # wrapped in DDP when distributed
    net: nn.Module  # the bare model (what checkpoints hold)
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    train_loader: DataLoader
    val_loader: DataLoader
    test_loader: DataLoader
    class_weights: list[float] | None = None
    extra: dict = field(default_factory=dict)

    def autocast(self):
        """Mixed precision on CUDA; a no-op elsewhere."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.dist.device.type, dtype=self.amp_dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def amp_dtype_for(mode: str, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; never on CPU (slower there, and not needed)."""
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def build_session(cfg: GeolocateConfig, paths: ProjectPaths, d: Dist) -> Session:
    """Data, model, loss, optimizer and schedule for `cfg`; checks the data first."""
    seed_everything(cfg.train.seed + d.rank)
    if d.device.type == "cpu" and cfg.train.cpu_threads:
        # Small models spend their time in thread hand-offs, not arithmetic: one thread is
        # several times faster for the tiny twins (benchmarks/RESULTS.md).
        torch.set_num_threads(cfg.train.cpu_threads)
    data = paths.data
    classes = load_classes(data)
    frame = training_frame(data, classes)
    splits = {name: frame.filter(pl.col("split") == name) for name in ("train", "val", "test")}
    empty = [name for name, frame in splits.items() if frame.height == 0]
    if empty:
        raise UserError(f"the split has no {' and no '.join(empty)} photos: training needs all three; "
                        "run `geolocate split` with non-zero ratios on more data")
    net = build_net(cfg, classes.height).to(d.device)
    if d.device.type == "cuda" and cfg.train.channels_last:
        net = net.to(memory_format=torch.channels_last)
    loaders = _loaders(cfg, paths, splits, net.data_config, d)
    centroids = classes.select("centroid_lat", "centroid_lon").to_numpy()
    counts = np.bincount(splits["train"]["label"].to_numpy(), minlength=classes.height)
    from geolocate.losses import build_criterion

    loss_fn = build_criterion(cfg.train, centroids, counts).to(d.device)
    model = _wrap_ddp(net, d)
    optimizer = build_optimizer(net, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train, _steps_per_epoch(cfg, loaders[0]))
    amp = amp_dtype_for(cfg.train.amp, d.device)
    scaler = torch.amp.GradScaler(d.device.type, enabled=amp == torch.float16)
    return Session(
        cfg, paths, d, classes, centroids, model, net, loss_fn, optimizer, scheduler, scaler, amp, *loaders,
        class_weights=None if loss_fn.class_weights is None else loss_fn.class_weights.tolist(),
    )


def build_net(cfg: GeolocateConfig, num_classes: int, model: tuple[str, Any] | None = None, views: int | None = None) -> nn.Module:
    """The run's bare model from `[model]` (what checkpoints hold): `model.name` and `model.weights`,
    or the (name, weights) given; with `views`, a multi-view model with the `[model]` fusion."""
    from geolocate.models import create_model

    m = cfg.model
    name, weights = model or (m.name, m.weights)
    fusion = dict(views=views, fusion=m.fusion, fusion_layers=m.fusion_layers, fusion_heads=m.fusion_heads,
                  fusion_dim=m.fusion_dim) if views else {}
    # freeze_backbone / train_last_n_blocks used to be read by the scout-sniper only: v1 ignored them silently.
    return create_model(name, num_classes=num_classes, pretrained=m.pretrained, weights=weights, dropout=m.dropout,
                        freeze_backbone=m.freeze_backbone, train_last_n_blocks=m.train_last_n_blocks, **fusion)


def _loaders(cfg: GeolocateConfig, paths: ProjectPaths, splits: dict, data_config: dict, d: Dist):
    size = input_size(data_config, cfg.data.image_size)
    root = paths.data.root
    workers, seed = cfg.data.num_workers, cfg.train.seed
    train_ds = PhotoDataset(splits["train"], root, train_transform(data_config, cfg.data), decode_side=size)
    val_ds = PhotoDataset(splits["val"], root, eval_transform(data_config, cfg.data.image_size), decode_side=size)
    test_ds = PhotoDataset(splits["test"], root, eval_transform(data_config, cfg.data.image_size), decode_side=size)
    bs = cfg.train.batch_size
    return (
        make_loader(train_ds, bs, True, workers, seed, distributed=d.enabled),
        make_loader(val_ds, bs * 2, False, workers, seed),
        make_loader(test_ds, bs * 2, False, workers, seed),
    )


def _steps_per_epoch(cfg: GeolocateConfig, loader: DataLoader) -> int:
    steps = len(loader)
    return min(steps, cfg.train.max_steps_per_epoch) if cfg.train.max_steps_per_epoch else steps


def _wrap_ddp(net: nn.Module, d: Dist) -> nn.Module:
    if not d.enabled:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[d.device.index] if d.device.type == "cuda" else None)
