"""The one rule that chooses on val, for both systems: the head of a run, the sniper, the position.

Every candidate is ranked by `bar_ratio`: the larger of its val median and p90 km, each divided by
the bar on the same val (`baselines.target_bar`: for each figure the best of the trivial baselines,
majority class or train centroid, and 5-NN on the frozen features); then by its median. Below 1 a
candidate beats every baseline on both figures, which covers what the release target asks: below
the trivial baselines on median and p90, a median not worse than 5-NN's. Where the candidate's
val errors are at hand (`error_row`, `baselines.bar_scores`) its median and p90 in the score are
Harrell–Davis estimates (`evaluate.quantiles`), which weigh every error: on a dozen val places a
plain p90 is one place's error.
Ranking by the median alone would keep a head that wins the median by sending a tenth of the photos
far away, or one that learnt nothing but the majority class: on small data that is the common case.
Ties keep the first candidate (a system lists its usual head first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geolocate.evaluate.baselines import Pool, bar_ratio, bar_scores, target_bar

RULE = ("val keeps the one whose position is closest to beating the best baseline (trivial or 5-NN) on both median "
        "and p90 (score = the larger of its two ratios to them, from Harrell–Davis estimates where its val errors are "
        "at hand; below 1 beats them), then the lowest median.")


def rank(row: dict) -> tuple[float, float]:
    """The sort key of a candidate's val row (`val_score`, then `val_median_km`): lower wins."""
    return row["val_score"], row["val_median_km"]


def val_bar(train_labels, train_latlon, val_latlon, centroids, train_embeddings=None, val_embeddings=None) -> tuple[float, float]:
    """The (median, p90) km bar on val (`baselines.target_bar`), the baselines drawn from the train
    examples; 5-NN joins it when both embeddings (frozen features) are given."""
    pool = Pool(np.asarray(train_labels, dtype=np.int64), np.asarray(train_latlon, dtype=np.float64), train_embeddings)
    val = Pool(np.zeros(len(val_latlon), dtype=np.int64), np.asarray(val_latlon, dtype=np.float64).reshape(-1, 2), val_embeddings)
    return target_bar(pool, val, np.asarray(centroids, dtype=np.float64))


def scored_row(median_km: float, p90_km: float, bar: tuple[float, float]) -> dict:
    """A candidate's val figures as the rule reads them."""
    return {"val_median_km": float(median_km), "val_p90_km": float(p90_km), "val_score": bar_ratio(median_km, p90_km, bar)}


def error_row(err_km: np.ndarray, bar: tuple[float, float]) -> dict:
    """`scored_row` of per-example errors in km (an empty val scores 0: nothing to choose on)."""
    if not len(err_km):
        return {"val_median_km": 0.0, "val_p90_km": 0.0, "val_score": 0.0}
    return {f"val_{key}": value for key, value in bar_scores(np.asarray(err_km), bar).items()}


def choose(rows: list[dict]) -> int:
    """Index of the row the rule keeps; marks every row's `chosen`."""
    best = min(range(len(rows)), key=lambda i: rank(rows[i]))
    for i, row in enumerate(rows):
        row["chosen"] = i == best
    return best


@dataclass
class ValJudge:
    """Scores logits on val as prediction reads them (the probability-weighted position over the
    top-k classes) by the rule above, with the val log-loss and top-1 accuracy beside.

    Early epochs whose probabilities are still the class priors place an example near the train
    centroid, so this ranking can keep a prior rather than a head that learnt noise.
    """

    labels: np.ndarray  # [N] true classes of val
    latlon: np.ndarray  # [N, 2]
    centroids: np.ndarray  # [C, 2] class centroids
    bar: tuple[float, float]  # the (median, p90) km bar on val (`val_bar`)
    topk: int = 5

    @classmethod
    def of(cls, data: dict, centroids: np.ndarray, topk: int = 5, bar: tuple[float, float] | None = None) -> "ValJudge":
        """From `data["train"]` and `data["val"]` (anything with `labels` and `latlon`, e.g. a `ViewSet`);
        `bar` when the caller has it (with the 5-NN median), else the trivial one drawn from train."""
        train, val = data["train"], data["val"]
        latlon = np.asarray(val.latlon, dtype=np.float64)
        bar = bar or val_bar(train.labels, train.latlon, latlon, centroids)
        return cls(np.asarray(val.labels), latlon, np.asarray(centroids, dtype=np.float64), bar, topk)

    def score(self, logits: np.ndarray) -> dict:
        from geolocate.evaluate.calibration import nll
        from geolocate.evaluate.metrics import softmax, topk_accuracy
        from geolocate.evaluate.position import position_errors_km, weighted_positions

        err = position_errors_km(weighted_positions(softmax(logits), self.centroids, self.topk), self.latlon)
        return {"val_nll": nll(logits, self.labels), "val_acc_top1": topk_accuracy(logits, self.labels, 1),
                **error_row(err, self.bar)}

    key = staticmethod(rank)
