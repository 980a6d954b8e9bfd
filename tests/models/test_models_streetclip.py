"""The HF CLIP → timm converter: the same image embeddings from a small random CLIP tower."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig, CLIPVisionModelWithProjection

from geolocate.models import create_model
from geolocate.models.build import create_backbone
from geolocate.models.registry import BackboneSpec
from geolocate.models.streetclip import clip_timm_kwargs
from geolocate.models.weights import load_weights
from geolocate.models.zoo import TINY_CLIP_KWARGS


def _vision_config(image_size: int = 32, projection_dim: int = 16) -> CLIPVisionConfig:
    return CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                            patch_size=8, image_size=image_size, projection_dim=projection_dim, hidden_act="quick_gelu")


def _max_diff(hf_embeds: torch.Tensor, ours: torch.Tensor) -> float:
    assert hf_embeds.shape == ours.shape
    return float((hf_embeds - ours).abs().max())


def test_converted_tower_matches_transformers(tmp_path):
    config = _vision_config()
    hf = CLIPVisionModelWithProjection(config).eval()
    hf.save_pretrained(tmp_path)
    spec = BackboneSpec("vit_base_patch16_clip_quickgelu_224", timm_kwargs=clip_timm_kwargs(config), hub=False,
                        projection_dim=config.projection_dim, converter="hf_clip")

    class Holder(torch.nn.Module):  # load_weights works on anything with a backbone and a head
        def __init__(self):
            super().__init__()
            self.backbone, self.head = create_backbone(spec), torch.nn.Identity()

    converted = Holder()
    untouched = create_backbone(spec).eval()
    load_weights(converted, tmp_path, spec)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        reference = hf(pixel_values=x).image_embeds
        assert _max_diff(reference, converted.backbone.eval()(x)) < 1e-4
        assert _max_diff(reference, untouched(x)) > 1e-2  # the check can fail: random weights do not match


def test_tiny_clip_twin_loads_a_full_clip_model_file_and_drops_the_text_tower(tmp_path):
    size, dim = TINY_CLIP_KWARGS["img_size"], create_model("tiny_clip").num_features
    text = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                          vocab_size=100, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    full = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=_vision_config(size, dim).to_dict(), projection_dim=dim)).eval()
    full.save_pretrained(tmp_path)
    model = create_model("tiny_clip", num_classes=5, weights=tmp_path / "model.safetensors").eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        reference = full.visual_projection(full.vision_model(pixel_values=x).pooler_output)
        assert _max_diff(reference, model.forward_features(x)) < 1e-4


def test_streetclip_has_clip_preprocessing_and_the_l14_projection():
    from geolocate.models import model_info

    info = model_info("streetclip")
    assert info["input_size"] == [3, 336, 336]
    assert info["std"] == pytest.approx([0.26862954, 0.26130258, 0.27577711])
    assert "hub" not in info["weights"]  # weights come from a local HF checkpoint only


def test_full_size_streetclip_keys_and_shapes_map_exactly():
    """ViT-L/14 336 on the meta device: no memory, but every converted key and shape is checked."""
    from geolocate.models.registry import get_spec
    from geolocate.models.streetclip import convert_hf_clip_state_dict

    config = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              patch_size=14, image_size=336, projection_dim=768, hidden_act="quick_gelu")
    with torch.device("meta"):
        hf_state = CLIPVisionModelWithProjection(config).state_dict()
        timm_state = create_backbone(get_spec("streetclip")).state_dict()
    converted = convert_hf_clip_state_dict(hf_state)
    assert converted.keys() == timm_state.keys()
    assert all(converted[k].shape == timm_state[k].shape for k in timm_state)
