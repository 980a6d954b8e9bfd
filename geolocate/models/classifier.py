"""The single-view classifier: a pooled timm backbone, dropout, and a linear layer over the cells.

Also the freezing policy shared with the multi-view model: a frozen backbone (optionally with its
last N blocks trainable) as used when backbone features are cached.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FreezableBackbone(nn.Module):
    """A module with a `backbone`; when that backbone is fully frozen it stays in eval mode."""

    backbone_frozen = False

    def train(self, mode: bool = True):
        """Like `nn.Module.train`, but a fully frozen backbone keeps eval mode (fixed BN statistics, no dropout)."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self


class GeoClassifier(FreezableBackbone):
    """Backbone → pooled embedding [B, D] → dropout → linear → logits [B, num_classes].

    Attributes:
        data_config: preprocessing (input_size, mean, std, interpolation, crop_pct).
        num_features: width D of the embedding `forward_features` returns.
        num_classes: outputs of the head; 0 makes `forward` return the embedding.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float, data_config: dict[str, Any], embed_dim: int,
                 votes: dict | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.data_config = data_config
        self.num_features = embed_dim
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else nn.Identity()
        if votes and num_classes:  # a k-NN vote head (`models.votes`): its index is in the state dict
            from geolocate.models.votes import VoteClassifier

            self.head = VoteClassifier(embed_dim, num_classes, **votes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] → pooled embeddings [B, D]."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] → logits [B, num_classes] (the embedding when num_classes is 0)."""
        return self.head(self.dropout(self.forward_features(x)))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled embedding) from one pass: what retrieval and the exported graph need."""
        features = self.forward_features(x)
        return self.head(self.dropout(features)), features


def set_backbone_trainable(model: nn.Module, freeze: bool, train_last_n_blocks: int | None = None) -> None:
    """Freeze `model.backbone` when asked, then make its last `train_last_n_blocks` blocks trainable.

    Blocks are timm's fine-grained parameter groups (`group_matcher(coarse=False)`, the grouping
    timm uses for layer-wise learning-rate decay), so "last N blocks" means the same thing for a
    ResNet, a ConvNeXt and a ViT. A CLIP projection head counts with the last group.
    """
    if not freeze:
        return
    backbone = model.backbone
    for param in backbone.parameters():
        param.requires_grad_(False)
    n_blocks = train_last_n_blocks or 0
    if n_blocks > 0:
        groups = _block_groups(backbone)
        trainable = {name for group in groups[-n_blocks:] for name in group}
        for name, param in backbone.named_parameters():
            if name in trainable:
                param.requires_grad_(True)
    model.backbone_frozen = n_blocks == 0
    model.train(model.training)


def _block_groups(backbone: nn.Module) -> list[list[str]]:
    """Parameter names of the backbone grouped by block, in forward order."""
    from timm.models import group_parameters

    grouped = group_parameters(backbone, backbone.group_matcher(coarse=False))
    groups = [grouped[key] for key in sorted(grouped)]
    known = {name for group in groups for name in group}
    # Parameters outside the matcher (e.g. a CLIP projection head) belong with the last block.
    leftover = [name for name, _ in backbone.named_parameters() if name not in known]
    if leftover:
        groups[-1] = groups[-1] + leftover
    return groups
