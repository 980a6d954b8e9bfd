"""Heads that learn from val once val has chosen their settings, and still measure val out-of-sample.

On a few hundred photos val is a fifth of what a head could learn from, and the baselines it is
compared with (k-NN, majority, centroid) draw on train + val. So once val has chosen a head's
settings (k and the mix of a vote head, the regularisation and length of a probe), the head takes
val in: a vote head's index gains val's examples (`models.votes`), a linear probe is refitted on
train + val with the settings val chose (`RefitLinear`). Each keeps what it was on train alone, and
`held_out` switches a model to it: evaluation measures val that way, so the temperature, the
position, test-time views, retrieval and the conformal radius are fitted on val as before, out of
sample. Test, `predict`, `serve` and the exported graph use the head that learnt from both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F


class HoldsOut:
    """A module that can answer as it was before val joined it (`held_out`)."""

    held_out = False  # set by `held_out`: a state of the evaluation, never of the checkpoint


class RefitLinear(HoldsOut, nn.Linear):
    """A linear head refitted on train + val (`weight`, `bias`); its train-only fit in buffers
    (`held_weight`, `held_bias`), which it answers with while `held_out`."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("held_weight", torch.zeros(out_features, in_features))
        self.register_buffer("held_bias", torch.zeros(out_features))

    @classmethod
    def of(cls, train_only: tuple[torch.Tensor, torch.Tensor], refit: tuple[torch.Tensor, torch.Tensor]) -> "RefitLinear":
        """The refitted head (`refit`: weight [C, D], bias [C]), keeping `train_only`'s for val."""
        weight, bias = refit
        head = cls(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            for param, value in zip((head.weight, head.bias, head.held_weight, head.held_bias), (*refit, *train_only)):
                param.copy_(value)
        return head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.held_out:
            return F.linear(x, self.held_weight, self.held_bias)
        return super().forward(x)


@contextlib.contextmanager
def held_out(model: nn.Module) -> Iterator[None]:
    """Every head inside `model` that took val in answers as it did on train alone: how val is
    measured once it has joined (test and predict use the heads as they are)."""
    heads = [m for m in model.modules() if isinstance(m, HoldsOut)]
    for head in heads:
        head.held_out = True
    try:
        yield
    finally:
        for head in heads:
            head.held_out = False
