"""One fit with early stopping for every trainer of both systems.

France v1's photo epochs (`train.loop.fit`), the v1 linear probe's sweep points, the four-view
fusion heads and probe path, the four-view fine-tune through the images and the residual
sniper all keep the best epoch on val by their own key and stop once `train.patience` epochs
brought no better one (0: never). That rule lives here once (`EarlyStopping`); `fit_epochs` is
the loop around it for trainers that keep their best weights in memory.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn


@dataclass
class FitResult:
    """What a finished fit leaves behind: its best epoch's history row, the history, its best weights
    when the trainer kept them in memory (None when they are on disk, as v1's checkpoints)."""

    best_epoch: int
    best_row: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    state: dict | None = None

    @property
    def best_val(self) -> dict:
        """The best epoch's val figures without their `val_` prefix (`median_km`, `p90_km`, …)."""
        return {k[4:]: v for k, v in self.best_row.items() if k.startswith("val_")}


class EarlyStopping:
    """The best history row so far by `key` (lower wins) and whether to stop: `patience` epochs
    without a better row (0: never stop)."""

    def __init__(self, key: Callable[[dict], tuple], patience: int, history: Iterable[dict] = ()) -> None:
        self.key, self.patience, self.best = key, int(patience), None
        for row in history:  # a resumed run: the best of the epochs already done
            self.update(row)

    def update(self, row: dict) -> bool:
        """Record an epoch's row; True when it is the best so far."""
        improved = self.best is None or self.key(row) < self.key(self.best)
        if improved:
            self.best = row
        return improved

    def should_stop(self, epoch: int) -> bool:
        return self.patience > 0 and self.best is not None and epoch - int(self.best["epoch"]) >= self.patience


def fit_epochs(run_epoch: Callable[[int], dict], epochs: Iterable[int], key: Callable[[dict], tuple], patience: int,
               module: nn.Module | None = None, initial: dict | None = None) -> FitResult:
    """Call `run_epoch(epoch)` (one epoch: train, then a row with `epoch` and the val figures) until
    `epochs` run out or early stopping says stop; keeps `module`'s weights of the best row.

    `initial`, when given, is the row of the untrained `module` (epoch 0): training then never ends
    worse than where it started.
    """
    stopper, history, state, started, stopped = EarlyStopping(key, patience), [], None, time.perf_counter(), False
    for row in ([initial] if initial is not None else []):
        history.append(row)
        stopper.update(row)
        state = _snapshot(module)
    for epoch in epochs:
        row = run_epoch(epoch)
        history.append(row)
        if stopper.update(row):
            state = _snapshot(module)
        elif stopper.should_stop(int(row["epoch"])):
            stopped = True
            break
    best = stopper.best or {"epoch": 0}
    return FitResult(int(best["epoch"]), best, history, stopped, time.perf_counter() - started, state)


def _snapshot(module: nn.Module | None) -> dict | None:
    return None if module is None else copy.deepcopy(module.state_dict())


@contextmanager
def small_ops():
    """One intra-op thread while training heads on cached features: their matrices are so small that
    thread hand-offs cost more than the maths (13x slower with 2 threads on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
