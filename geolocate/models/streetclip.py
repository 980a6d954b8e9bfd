"""StreetCLIP's vision tower in timm: convert a Hugging Face `transformers` CLIP checkpoint.

StreetCLIP is OpenAI CLIP ViT-L/14 at 336 px with QuickGELU, published as an HF `CLIPModel`.
timm's `vit_*_clip_quickgelu_*` is the same network (pre-norm, class token, token pooling);
only the key names and a few shapes differ:

| transformers | timm |
| --- | --- |
| `embeddings.class_embedding` [D] | `cls_token` [1, 1, D] |
| `embeddings.position_embedding.weight` [N+1, D] | `pos_embed` [1, N+1, D] |
| `embeddings.patch_embedding` | `patch_embed.proj` |
| `pre_layrnorm` / `post_layernorm` | `norm_pre` / `norm` |
| `self_attn.{q,k,v}_proj` | `attn.qkv` (concatenated) |
| `self_attn.out_proj`, `layer_norm{1,2}` | `attn.proj`, `norm{1,2}` |
| `visual_projection` | `head` (bias-free) |

Text-tower keys (`text_model.*`, `text_projection`, `logit_scale`) are dropped.
"""

from __future__ import annotations

import re
from typing import Any

import torch

_VISION = "vision_model."
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_LAYER_SWAPS = {
    "layer_norm1.": "norm1.",
    "layer_norm2.": "norm2.",
    "self_attn.out_proj.": "attn.proj.",
    "mlp.fc1.": "mlp.fc1.",
    "mlp.fc2.": "mlp.fc2.",
}
_TOP_SWAPS = {
    "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
    "pre_layrnorm.weight": "norm_pre.weight",
    "pre_layrnorm.bias": "norm_pre.bias",
    "post_layernorm.weight": "norm.weight",
    "post_layernorm.bias": "norm.bias",
}


def convert_hf_clip_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF `CLIPModel` / `CLIPVisionModelWithProjection` tensors → timm VisionTransformer keys."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key == "visual_projection.weight":
            out["head.weight"] = value
        elif key.startswith(_VISION):
            _convert_vision_key(key.removeprefix(_VISION), value, out, qkv)
    for (layer, kind), parts in sorted(qkv.items()):
        out[f"blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def _convert_vision_key(key: str, value: torch.Tensor, out: dict, qkv: dict) -> None:
    if key == "embeddings.class_embedding":
        out["cls_token"] = value.reshape(1, 1, -1)
    elif key == "embeddings.position_embedding.weight":
        out["pos_embed"] = value.unsqueeze(0)
    elif key == "embeddings.position_ids":
        return  # a buffer older checkpoints saved; timm computes positions itself
    elif key in _TOP_SWAPS:
        out[_TOP_SWAPS[key]] = value
    elif match := _LAYER.match(key):
        layer, rest = int(match.group(1)), match.group(2)
        projection = re.match(r"^self_attn\.([qkv])_proj\.(weight|bias)$", rest)
        if projection:
            qkv.setdefault((layer, projection.group(2)), {})[projection.group(1)] = value
            return
        for old, new in _LAYER_SWAPS.items():
            if rest.startswith(old):
                out[f"blocks.{layer}.{new}{rest.removeprefix(old)}"] = value
                return
        out[f"blocks.{layer}.{rest}"] = value  # unknown: kept, so the strict load names it
    else:
        out[key] = value


def clip_timm_kwargs(vision_config: Any) -> dict[str, Any]:
    """timm VisionTransformer arguments matching an HF `CLIPVisionConfig` (object or dict)."""
    get = vision_config.get if isinstance(vision_config, dict) else lambda k: getattr(vision_config, k)
    if get("hidden_act") != "quick_gelu":
        raise ValueError(f"only QuickGELU CLIP towers map onto timm's clip_quickgelu models, not {get('hidden_act')}")
    return {
        "img_size": get("image_size"),
        "patch_size": get("patch_size"),
        "embed_dim": get("hidden_size"),
        "depth": get("num_hidden_layers"),
        "num_heads": get("num_attention_heads"),
        "mlp_ratio": get("intermediate_size") / get("hidden_size"),
    }
