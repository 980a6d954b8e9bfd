"""What a system supplies to the shared trainer, and the head choice both systems go through.

A system (France v1's single photos, the scout-sniper's four-view locations) is a small object:
its candidate heads for a run of `n_train` training examples, and how to train one of them on its
data. Training every candidate, keeping only the best so far in memory and ranking them on val by
the one rule (`evaluate.choice`) happens here, once for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from geolocate.console import console
from geolocate.evaluate.choice import choose, rank
from geolocate.train.fitting import FitResult


@dataclass
class Candidate:
    """One trained head: how its fit went, its val row (`evaluate.choice.scored_row` keys at least),
    and whatever the system needs to keep it (a model, its features…)."""

    head: str
    fit: FitResult
    val: dict
    payload: Any = None

    def row(self) -> dict:
        keys = ("val_median_km", "val_p90_km", "val_score", "val_acc_top1")
        return {"head": self.head, **{k: self.val[k] for k in keys if k in self.val}, "best_epoch": self.fit.best_epoch,
                "seconds": round(self.fit.seconds, 2)}


class System(Protocol):
    """What differs between the two systems' training; everything else is shared."""

    name: str  # "v1" or "scout-sniper" (as `geolocate.systems` names them)

    def candidate_heads(self, n_train: int) -> list[str]:
        """The heads to train, in training order (the usual one first: ties keep it)."""

    def train_head(self, head: str) -> Candidate:
        """Train one head on the system's data and score it on val."""


def choose_head(system: System, heads: list[str], what: str = "head") -> tuple[Candidate, list[dict]]:
    """Train each of `heads` and keep the best on val by the one rule; (chosen, one row per candidate).

    Only the best candidate so far stays in memory: each may hold a whole backbone.
    """
    best, rows = None, []
    if len(heads) > 1:
        console.print(f"{what}: choosing on val among {', '.join(heads)} (train.small_data_heads)")
    for head in heads:
        candidate = system.train_head(head)
        rows.append(candidate.row())
        _say(what, candidate)
        if best is None or rank(candidate.val) < rank(best.val):
            best = candidate
    choose(rows)
    if len(rows) > 1:
        console.print(f"{what} chosen on val: [bold]{best.head}[/]")
    return best, rows


def _say(what: str, c: Candidate) -> None:
    v = c.val
    console.print(f"  {what} {c.head:<11} val median {v['val_median_km']:.2f} km, p90 {v['val_p90_km']:.2f} km "
                  f"({v['val_score']:.2f} × the bar), {c.fit.seconds:.1f} s")
