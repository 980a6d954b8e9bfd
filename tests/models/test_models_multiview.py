"""Multi-view fusion: missing views never matter, cached features give the same logits, freezing."""

from __future__ import annotations

import pytest
import torch

from geolocate.models import create_model
from geolocate.models.multiview import FusionHead

FUSION = {"fusion_dim": 32, "fusion_heads": 2, "fusion_layers": 1}


@pytest.mark.parametrize("name", ["tiny_resnet", "tiny_clip"])
@pytest.mark.parametrize("fusion", ["transformer", "mean"])
def test_a_masked_view_does_not_change_the_output(name, fusion):
    model = create_model(name, num_classes=6, views=4, fusion=fusion, **FUSION).eval()
    size = model.data_config["input_size"]
    views = torch.randn(2, 4, *size)
    mask = torch.tensor([[True, False, True, True], [False, False, False, True]])
    other = views.clone()
    other[~mask] = torch.randn_like(other[~mask]) * 10
    with torch.no_grad():
        logits = model(views, mask)
        assert logits.shape == (2, 6)
        assert torch.allclose(logits, model(other, mask), atol=1e-6)
        # ...while a present view does matter: the check can fail
        other[0, 0] += 1.0
        assert not torch.allclose(logits[0], model(other, mask)[0], atol=1e-4)


@pytest.mark.parametrize("kind, width", [("transformer", 32), ("mean", 24)])
def test_fusion_head_on_cached_features(kind, width):
    head = FusionHead(24, num_classes=5, kind=kind, fusion_dim=32, layers=1, heads=2).eval()
    features, mask = torch.randn(3, 4, 24), torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]).bool()
    assert head(features, mask).shape == (3, 5)
    fused = head.fuse(features, mask)
    assert fused.shape == (3, width) and torch.isfinite(fused).all()
    if kind == "mean":
        assert torch.allclose(fused[1], features[1, 0]) and torch.equal(fused[2], torch.zeros(24))


def test_cached_features_give_the_same_logits_as_images():
    model = create_model("tiny_resnet", num_classes=4, views=4, **FUSION).eval()
    views, mask = torch.randn(2, 4, *model.data_config["input_size"]), torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1]]).bool()
    with torch.no_grad():
        cached = model.view_features(views, mask)
        assert cached.shape == (2, 4, model.view_dim)
        assert torch.allclose(model.forward_cached(cached, mask), model(views, mask), atol=1e-6)
        assert model.forward_features(views, mask).shape == (2, model.num_features)


def test_freeze_backbone_trains_only_the_head_and_keeps_bn_statistics():
    model = create_model("tiny_resnet", num_classes=4, views=4, freeze_backbone=True, **FUSION)
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert not model.backbone.training and model.head.training


def test_train_last_n_blocks_unfreezes_only_the_end():
    model = create_model("tiny_convnext", num_classes=4, train_last_n_blocks=2)
    trainable = [name for name, p in model.backbone.named_parameters() if p.requires_grad]
    frozen = [name for name, p in model.backbone.named_parameters() if not p.requires_grad]
    assert trainable and frozen
    assert all(name.startswith(("stages.3", "head.")) for name in trainable)
    assert model.train().backbone.training  # partially trainable: BN/GRN follow train mode


def test_fusion_width_not_divisible_by_heads_is_a_user_error():
    from geolocate.errors import UserError

    with pytest.raises(UserError, match="fusion_heads"):
        create_model("tiny_resnet", num_classes=3, views=4, fusion_dim=30, fusion_heads=8)
