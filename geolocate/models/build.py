"""The one builder behind every registered name: backbone, weights, preprocessing, head.

`create_model` (registry) resolves a name to a `BackboneSpec` and calls `build_model`; nothing
else constructs models, so weights loading and `data_config` behave the same for all of them.
"""

from __future__ import annotations

from typing import Any

from geolocate.models.spec import BackboneSpec, create_backbone  # create_backbone re-exported

DATA_CONFIG_KEYS = ("input_size", "mean", "std", "interpolation", "crop_pct")


def build_model(
    spec: BackboneSpec,
    num_classes: int = 0,
    pretrained: bool = False,
    weights=None,
    views: int | None = None,
    dropout: float = 0.3,
    freeze_backbone: bool = False,
    train_last_n_blocks: int | None = None,
    fusion: str = "transformer",
    fusion_layers: int = 2,
    fusion_heads: int = 8,
    fusion_dim: int = 512,
    votes: dict | None = None,
):
    """Build a single-view `GeoClassifier`, or a `MultiViewClassifier` when `views` is given.

    The fusion options only shape multi-view models; single-view models accept and ignore them
    so that one `[model]` config table serves both. `votes` (a k-NN vote head's
    `VoteClassifier.settings`) replaces the linear head of either.
    """
    from geolocate.models.classifier import GeoClassifier, set_backbone_trainable
    from geolocate.models.multiview import FusionHead, MultiViewClassifier
    from geolocate.models.weights import load_weights, pretrained_backbone

    # A local file wins over the hub: it is what offline users set, and it is explicit.
    backbone = pretrained_backbone(spec) if pretrained and weights is None else create_backbone(spec)
    data_config = model_data_config(backbone, spec)
    embed_dim = spec.projection_dim or backbone.num_features
    if views:
        head = FusionHead(embed_dim, num_classes, kind=fusion, num_views=views, fusion_dim=fusion_dim,
                          layers=fusion_layers, heads=fusion_heads, dropout=dropout, votes=votes)
        model = MultiViewClassifier(backbone, head, data_config, embed_dim)
    else:
        model = GeoClassifier(backbone, num_classes, dropout, data_config, embed_dim, votes)
    if weights is not None:
        load_weights(model, weights, spec)
    set_backbone_trainable(model, freeze_backbone or train_last_n_blocks is not None, train_last_n_blocks)
    return model


def model_data_config(backbone, spec: BackboneSpec) -> dict[str, Any]:
    """Preprocessing resolved from the built backbone's pretrained config (timm), plus spec overrides."""
    from timm.data import resolve_model_data_config

    return _finish(resolve_model_data_config(backbone), spec)


def spec_data_config(spec: BackboneSpec) -> dict[str, Any]:
    """The same preprocessing as `model_data_config`, from timm's pretrained config alone (no model built)."""
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(spec.timm_name)
    return _finish(resolve_data_config({}, pretrained_cfg=cfg.to_dict() if cfg else {}), spec)


def _finish(resolved: dict[str, Any], spec: BackboneSpec) -> dict[str, Any]:
    config = {key: resolved[key] for key in DATA_CONFIG_KEYS}
    if spec.input_size is not None:
        config["input_size"] = tuple(spec.input_size)
    config["input_size"] = tuple(int(v) for v in config["input_size"])
    config["mean"] = tuple(float(v) for v in config["mean"])
    config["std"] = tuple(float(v) for v in config["std"])
    return config
