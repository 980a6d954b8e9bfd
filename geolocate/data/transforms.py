"""Train and eval transforms, sized and normalised by what the model says it expects.

The backbone owns its preprocessing (`model.data_config`, resolved from timm's pretrained
config): CLIP and ImageNet normalisations differ, so nothing here hard-codes a mean or a size.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from geolocate.config import DataConfig
from geolocate.data.tta import tta_views

_INTERPOLATION = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


def input_size(data_config: dict[str, Any], override: int | None = None) -> int:
    """Square input side: the override when set, else the model's."""
    return int(override or data_config["input_size"][-1])


def eval_transform(data_config: dict[str, Any], override: int | None = None) -> T.Compose:
    """Resize so the centre crop keeps `crop_pct` of the photo, centre-crop, normalise."""
    size = input_size(data_config, override)
    return T.Compose([_eval_resize(data_config, size), T.CenterCrop(size), T.ToImage(), *_normalise(data_config)])


def eval_tta_transform(data_config: dict[str, Any], override: int | None = None, crops: int = 3) -> T.Compose:
    """The eval transform's resize and normalisation, then the test-time views [2·crops, C, size, size]
    (`data.tta.tta_views`: the centre crop, the ends of the width, and their mirror images) instead of one crop."""
    size = input_size(data_config, override)
    views = partial(tta_views, size=size, crops=crops)  # a partial, not a lambda: loader workers pickle it
    return T.Compose([_eval_resize(data_config, size), T.ToImage(), *_normalise(data_config), T.ToPureTensor(), views])


def train_transform(data_config: dict[str, Any], cfg: DataConfig) -> T.Compose:
    """The card's augmentation: mild random resized crop, small rotation, moderate colour jitter."""
    size = input_size(data_config, cfg.image_size)
    jitter = cfg.color_jitter
    # Augment the PIL image (Pillow's kernels are several times faster than tensor HSV maths
    # on small images), then convert once.
    return T.Compose([
        T.RandomResizedCrop(size, scale=(cfg.scale_min, 1.0), ratio=(3 / 4, 4 / 3), interpolation=_interp(data_config), antialias=True),
        T.RandomRotation(cfg.rotation_deg, interpolation=InterpolationMode.BILINEAR),
        T.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=min(jitter / 4, 0.5)),
        T.ToImage(),
        *_normalise(data_config),
    ])


def _eval_resize(data_config: dict[str, Any], size: int) -> T.Resize:
    """The shorter side to `size / crop_pct`, so a centre crop of `size` keeps `crop_pct` of the photo."""
    resize = int(math.floor(size / float(data_config.get("crop_pct", 0.875))))
    return T.Resize(resize, interpolation=_interp(data_config), antialias=True)


def _interp(data_config: dict[str, Any]) -> InterpolationMode:
    return _INTERPOLATION.get(str(data_config.get("interpolation", "bilinear")), InterpolationMode.BILINEAR)


def _normalise(data_config: dict[str, Any]) -> list:
    return [T.ToDtype(torch.float32, scale=True), T.Normalize(list(data_config["mean"]), list(data_config["std"]))]
