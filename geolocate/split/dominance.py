"""The dominance cap: no class may hold more than `cells.max_dominance` of train.

Downsampling a class also shrinks train, so the cap is solved exactly: the largest per-class
limit K with K ≤ cap · Σ min(n_c, K). Classes above K keep K train rows chosen with the seed;
val and test are never touched. With fewer than 1/cap classes no limit works (three classes
cannot each hold ≤ 25 %), and the cap is reported as unattainable instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl


@dataclass
class DominanceOutcome:
    """What the cap did to train."""

    cap: float
    attainable: bool
    limit: int | None
    share_before: float
    share_after: float
    removed: pl.DataFrame  # image_id of the train rows left out
    capped_cells: list[dict] = field(default_factory=list)

    def report(self) -> dict:
        return {
            "cap": self.cap,
            "attainable": self.attainable,
            "per_class_limit": self.limit,
            "largest_share_before": self.share_before,
            "largest_share_after": self.share_after,
            "downsampled_rows": self.removed.height,
            "downsampled_cells": self.capped_cells,
        }


def class_limit(counts: np.ndarray, cap: float) -> int | None:
    """Largest per-class count K such that K ≤ cap · Σ min(counts, K); None when none exists.

    `K ≤ cap · Σ min(n, K)` holds on an interval [0, K*] (the right side minus K is concave and
    zero at 0), so a binary search finds K*. With fewer than 1/cap classes only K = 0 fits.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0:
        return 0

    def fits(k: int) -> bool:
        # The relative slack absorbs float rounding of cap · sum (0.1 · 1000 must admit 100).
        return k <= cap * np.minimum(counts, k).sum() * (1 + 1e-12)

    lo, hi = 0, int(counts.max())
    if fits(hi):
        return hi
    while hi - lo > 1:  # invariant: fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo or None


def cap_dominance(train: pl.DataFrame, cap: float, seed: int) -> DominanceOutcome:
    """Choose the train rows (image_id, cell_id) to leave out so no class exceeds `cap` of train."""
    counts = train.group_by("cell_id").agg(n=pl.len()).sort("cell_id")
    n = counts["n"].to_numpy()
    total = int(n.sum())
    before = float(n.max() / total) if total else 0.0
    limit = class_limit(n, cap)
    if total == 0 or limit is None or n.max() <= limit:
        none = train.select("image_id").clear()
        return DominanceOutcome(cap, limit is not None, limit, before, before, none)
    ranked = train.select("image_id", "cell_id").sort("image_id")
    ranked = ranked.with_columns(order=pl.Series(np.random.default_rng(seed).permutation(ranked.height)))
    ranked = ranked.with_columns(rank=pl.col("order").rank("ordinal").over("cell_id"))
    removed = ranked.filter(pl.col("rank") > limit).select("image_id")
    capped = counts.filter(pl.col("n") > limit)
    capped_cells = [{"cell_id": c, "train_before": int(k), "train_after": limit} for c, k in capped.iter_rows()]
    kept_total = int(np.minimum(n, limit).sum())
    return DominanceOutcome(cap, True, limit, before, limit / kept_total, removed, capped_cells)
