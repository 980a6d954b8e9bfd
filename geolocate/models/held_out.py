"""Indexes that take in val once val has chosen, and the one switch that keeps val out of them.

Three modules carry an index of examples as buffers: the k-NN vote head (`models.votes`), the
neighbour sniper (`models.sniper`) and the retrieval sniper (`evaluate.retrieval_sniper`). Each is
chosen on val against the train examples, then the val examples join its index (the first
`train_size` rows stay train's), as the k-NN baselines search train + val: otherwise a test place
next to a val place has no neighbour there. Val itself is then measured `held_out`, searching the
train rows only, so val's figures and every later choice on them stay out-of-sample; test and
predict search the whole index. One mechanism for all three, so the systems cannot drift apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class TrainRowsIndex:
    """Mixin of an `nn.Module` whose index buffers start with `train_size` train rows (None: all of
    them train's, as in checkpoints written before val joined). `held_out` is a state of the
    evaluation, never of the checkpoint: it is set only inside `held_out(model)`."""

    train_size: int | None
    held_out: bool = False

    def searchable(self, *buffers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rows a query may search: all of them, or the train rows inside a `held_out` block."""
        if self.held_out and self.train_size is not None:
            return tuple(b[: self.train_size] for b in buffers)
        return buffers


def checked_train_size(train_size, size: int, least: int = 0, name: str = "train_size") -> int | None:
    """An index's `train_size` (from a sidecar a user may have edited): None, or an int in least..size
    (an index sniper's, and a vote head's with `least` 1).

    Raises:
        ValueError: anything else (`load_checkpoint` turns it into one line naming the checkpoint).
    """
    if train_size is not None and (type(train_size) is not int or not least <= train_size <= size):
        raise ValueError(f"{name} must be a whole number in {least}..{size}, not {train_size!r}")
    return train_size


@contextlib.contextmanager
def held_out(model: nn.Module) -> Iterator[None]:
    """Every index inside `model` searches only its train rows: how val (and train) are measured once
    val has joined the index (test and predict search all of it). Blocks nest."""
    indexes = [m for m in model.modules() if isinstance(m, TrainRowsIndex)]
    before = [index.held_out for index in indexes]
    for index in indexes:
        index.held_out = True
    try:
        yield
    finally:
        for index, was in zip(indexes, before):
            index.held_out = was
