"""What a registered model name means (`BackboneSpec`), and the timm backbone it builds.

The registry's entries return a spec; the builder and the weights loader read it. It lives
below all three so that none of them imports another to learn what a spec is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackboneSpec:
    """What a registered name means.

    Attributes:
        timm_name: timm architecture (optionally `arch.tag`) used for the backbone.
        timm_kwargs: extra arguments to `timm.create_model` (tiny sizes, image size...).
        input_size: overrides the pretrained config's input size (tiny twins), as (3, H, W).
        hub: whether `pretrained=True` may download weights from timm's hub.
        projection_dim: for CLIP towers, the width of the bias-free projection head kept on the
            backbone (the image embedding is the projected one, as in CLIP).
        converter: name of the key converter applied to foreign state dicts ("lukemelas", "hf_clip").
        package_weights: an installed package that ships weights (`efficientnet_lite0`).
        description: one line for `geolocate models`.
    """

    timm_name: str
    timm_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None
    hub: bool = True
    projection_dim: int | None = None
    converter: str | None = None
    package_weights: str | None = None
    description: str = ""


def create_backbone(spec: BackboneSpec, pretrained: bool = False):
    """The timm backbone of `spec`, pooled (num_classes=0) or ending in CLIP's bias-free projection."""
    import timm
    from torch import nn

    num_classes = spec.projection_dim or 0
    backbone = timm.create_model(spec.timm_name, pretrained=pretrained, num_classes=num_classes, **spec.timm_kwargs)
    if spec.projection_dim:
        # CLIP's visual projection has no bias; timm's head does, so swap it for the real shape.
        backbone.head = nn.Linear(backbone.num_features, spec.projection_dim, bias=False)
    return backbone
