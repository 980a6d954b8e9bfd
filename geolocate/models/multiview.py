"""Multi-view fusion: four cardinal views of a location → one prediction, views may be missing.

`FusionHead` works on per-view features [B, V, D] and a presence mask [B, V] (True = present), so
it trains standalone on cached backbone features; `MultiViewClassifier` runs the backbone on the
present views and feeds the same head. Masked views never influence the output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from geolocate.errors import UserError
from geolocate.models.classifier import FreezableBackbone


class MeanFusion(nn.Module):
    """Mean of the present views' features (the baseline that sometimes beats attention)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim = in_dim

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(features, mask)


def masked_mean(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the present views [B, V, D] → [B, D]."""
    weights = mask.to(features.dtype).unsqueeze(-1)
    # A location with no view gets a zero vector rather than a division by zero.
    return (features * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class ProbeFusion(nn.Module):
    """What a linear probe reads: the mean of the present views' L2-normalised features, standardised.

    Normalising each view keeps one over-exposed view from outweighing the others; standardising
    every dimension with train statistics (`shift`, `scale`: buffers, so a checkpoint carries them)
    lets one weight-decay grid suit every backbone's feature scale. `fit_standardisation` sets them.
    """

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim = in_dim
        self.register_buffer("shift", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))

    def pooled(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        unit = features / features.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return masked_mean(unit, mask)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.pooled(features, mask) - self.shift) / self.scale

    @torch.no_grad()
    def fit_standardisation(self, features: torch.Tensor, mask: torch.Tensor) -> None:
        """Centre and scale every dimension by the training locations' statistics."""
        pooled = self.pooled(features, mask.bool())
        self.shift.copy_(pooled.mean(0))
        std = pooled.std(0, unbiased=False) if len(pooled) > 1 else torch.ones_like(self.scale)
        # A dimension constant on train (a dead ReLU) must not turn a test wobble into a huge value.
        self.scale.copy_(std.clamp(min=0.1 * float(std.mean()) + 1e-12))


class TransformerFusion(nn.Module):
    """Project views, add a learned view-direction embedding, prepend a CLS token, encode, read CLS."""

    def __init__(self, in_dim: int, num_views: int = 4, dim: int = 512, layers: int = 2, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise UserError(f"model.fusion_dim = {dim} is not a multiple of model.fusion_heads = {heads}; change one of them")
        self.out_dim = dim
        self.project = nn.Linear(in_dim, dim)
        self.view_embed = nn.Parameter(torch.zeros(num_views, dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.view_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        tokens = self.project(features) + self.view_embed
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        # CLS is always attendable, so a location with no views still has a finite output.
        padding = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
        encoded = self.encoder(tokens, src_key_padding_mask=padding)
        return self.norm(encoded[:, 0])


class FusionHead(nn.Module):
    """Per-view features [B, V, D] + mask [B, V] → logits; `fuse` gives the fused features."""

    def __init__(self, in_dim: int, num_classes: int, kind: str = "transformer", num_views: int = 4,
                 fusion_dim: int = 512, layers: int = 2, heads: int = 8, dropout: float = 0.1, votes: dict | None = None) -> None:
        super().__init__()
        if kind == "mean":
            self.fusion = MeanFusion(in_dim)
        elif kind == "probe":
            self.fusion = ProbeFusion(in_dim)
        elif kind == "transformer":
            self.fusion = TransformerFusion(in_dim, num_views, fusion_dim, layers, heads, dropout)
        else:
            raise ValueError(f"unknown fusion {kind!r}: use 'transformer', 'mean' or 'probe'")
        self.model_kwargs = {"in_dim": in_dim, "num_classes": num_classes, "kind": kind, "num_views": num_views,
                             "fusion_dim": fusion_dim, "layers": layers, "heads": heads, "dropout": dropout}
        self.num_views = num_views
        self.out_dim = self.fusion.out_dim
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.out_dim, num_classes) if num_classes else nn.Identity()
        if votes:  # a k-NN vote head (`models.votes`): its index is in the state dict
            from geolocate.models.votes import VoteClassifier

            self.classifier = VoteClassifier(self.out_dim, num_classes, **votes)
            self.model_kwargs["votes"] = dict(votes)

    def fuse(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Fused location features [B, out_dim] (the sniper's input)."""
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        return self.fusion(features, mask.bool())

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.dropout(self.fuse(features, mask)))


@torch.inference_mode()
def head_outputs(head: FusionHead, views, batch_size: int = 512):
    """(logits [L, C] float64 numpy, fused features [L, F]) of a fusion head in eval mode over a
    `data.views.ViewSet` (anything with `features` [L, V, D] and `mask` [L, V])."""
    head.eval()
    logits, fused = [], []
    for start in range(0, len(views), batch_size):
        z = head.fuse(views.features[start:start + batch_size], views.mask[start:start + batch_size])
        fused.append(z)
        logits.append(head.classifier(z))
    if not logits:
        import numpy as np

        return np.zeros((0, head.classifier.out_features)), torch.zeros(0, head.out_dim)
    return torch.cat(logits).double().numpy(), torch.cat(fused)


class MultiViewClassifier(FreezableBackbone):
    """A backbone shared by the views, then a `FusionHead`.

    `forward(views [B, V, 3, H, W], mask [B, V])` gives logits; `forward_cached(features, mask)`
    does the same from precomputed per-view features, which is how heads train on the feature cache.
    """

    def __init__(self, backbone: nn.Module, head: FusionHead, data_config: dict[str, Any], embed_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.data_config = data_config
        self.view_dim = embed_dim
        self.num_features = head.out_dim
        self.num_views = head.num_views
        self.num_classes = head.model_kwargs["num_classes"]

    def view_features(self, views: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-view embeddings [B, V, D]; only present views go through the backbone (zeros elsewhere)."""
        batch, n_views = views.shape[:2]
        mask = _full_mask(views, mask)
        features = views.new_zeros(batch, n_views, self.view_dim)
        if mask.any():
            features[mask] = self.backbone(views[mask]).to(features.dtype)
        return features

    def forward_features(self, views: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Fused location embedding [B, num_features]."""
        mask = _full_mask(views, mask)
        return self.head.fuse(self.view_features(views, mask), mask)

    def forward(self, views: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = _full_mask(views, mask)
        return self.head(self.view_features(views, mask), mask)

    def forward_cached(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from cached per-view features [B, V, D]."""
        return self.head(features, mask)


def _full_mask(views: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.ones(views.shape[:2], dtype=torch.bool, device=views.device)
    return mask.to(device=views.device, dtype=torch.bool)
