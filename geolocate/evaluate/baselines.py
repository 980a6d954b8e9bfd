"""Baselines beside every model: what a run must beat before its figures mean anything.

A model that learnt nothing still prints a median in km; only next to what trivial guesses score
on the same test photos does that number say something. Every baseline draws on the same pool the
model saw (train + val) and is scored on the same test split with `geo_metrics`, so the columns
compare like for like:

- `majority`: always the most frequent class, placed at its centroid;
- `centroid`: always the mean position of the pool (its nearest class for the accuracy);
- `1-NN`, `5-NN`: the nearest pool photos by cosine similarity of the *frozen* backbone's
  L2-normalised embeddings (the class by similarity-weighted vote, the position of the nearest
  neighbour for 1-NN, the medoid of the k for 5-NN: one stray neighbour cannot drag it);
- `ceiling`: the true class's centroid, i.e. a perfect classifier: no class model can do better.

`majority` and `centroid` are the *trivial* baselines of the release gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geolocate.evaluate.metrics import geo_metrics, position_errors_km
from geolocate.geo import pairwise_haversine_km, spherical_mean

TRIVIAL = ("majority", "centroid")
KNN_KS = (1, 5)


@dataclass
class Pool:
    """Photos (or locations) with their class and position; `embeddings` are optional [N, D]."""

    labels: np.ndarray  # [N] int
    latlon: np.ndarray  # [N, 2]
    embeddings: np.ndarray | None = None


def _nearest_class(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return pairwise_haversine_km(points[:, 0], points[:, 1], centroids[:, 0], centroids[:, 1]).argmin(axis=1)


def _score(pred_latlon: np.ndarray, scores: np.ndarray, test: Pool) -> dict:
    return geo_metrics(position_errors_km(pred_latlon, test.latlon), scores, test.labels)


def majority(pool: Pool, test: Pool, centroids: np.ndarray) -> dict:
    """Always the pool's most frequent class (ties: the lower index), at its centroid."""
    counts = np.bincount(pool.labels, minlength=len(centroids)).astype(np.float64)
    scores = np.tile(counts, (len(test.labels), 1))
    pred = np.tile(centroids[int(counts.argmax())], (len(test.labels), 1))
    return _score(pred, scores, test)


def centroid(pool: Pool, test: Pool, centroids: np.ndarray) -> dict:
    """Always the pool's mean position; the classes ranked by their distance to it."""
    centre = np.array([spherical_mean(pool.latlon[:, 0], pool.latlon[:, 1])], dtype=np.float64)
    distance = pairwise_haversine_km(centre[:, 0], centre[:, 1], centroids[:, 0], centroids[:, 1])[0]
    scores = np.tile(-distance, (len(test.labels), 1))
    return _score(np.tile(centre, (len(test.labels), 1)), scores, test)


def ceiling(test: Pool, centroids: np.ndarray) -> dict:
    """A perfect classifier placing every photo at its true class's centroid."""
    scores = np.eye(len(centroids))[test.labels]
    return _score(centroids[test.labels], scores, test)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def medoid(latlon: np.ndarray) -> np.ndarray:
    """The point of `latlon` [k, 2] with the smallest summed distance to the others (robust to one stray)."""
    d = pairwise_haversine_km(latlon[:, 0], latlon[:, 1], latlon[:, 0], latlon[:, 1])
    return latlon[int(d.sum(axis=1).argmin())]


def knn(pool: Pool, test: Pool, n_classes: int, k: int) -> dict:
    """k-NN on L2-normalised embeddings: class by similarity-weighted vote, position by medoid."""
    sims = l2_normalise(test.embeddings) @ l2_normalise(pool.embeddings).T
    k = min(k, sims.shape[1])
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    scores = np.zeros((len(test.labels), n_classes))
    for i, row in enumerate(top):
        # +1 so a negative similarity still counts as a vote; /1e3 keeps closer neighbours ahead on ties
        np.add.at(scores[i], pool.labels[row], 1.0 + sims[i, row] / 1e3)
    pred = np.stack([medoid(pool.latlon[row]) for row in top])
    return _score(pred, scores, test)


def all_baselines(pool: Pool, test: Pool, centroids: np.ndarray) -> dict[str, dict]:
    """Every baseline's `geo_metrics` on `test`; the k-NN ones only when both sides have embeddings."""
    out = {"majority": majority(pool, test, centroids), "centroid": centroid(pool, test, centroids)}
    if pool.embeddings is not None and test.embeddings is not None and len(pool.labels):
        out.update({f"{k}-NN": knn(pool, test, len(centroids), k) for k in KNN_KS})
    out["ceiling"] = ceiling(test, centroids)
    return out


def best_trivial(baselines: dict[str, dict], key: str) -> tuple[str, float]:
    """(name, value) of the trivial baseline with the lowest `key` (e.g. `median_km`)."""
    name = min((n for n in TRIVIAL if n in baselines), key=lambda n: baselines[n][key])
    return name, float(baselines[name][key])


def collapse_warning(predicted: np.ndarray, labels: np.ndarray, chosen_head: str | None = None) -> str | None:
    """A warning when more than half of a split goes to one class while no class holds that share.

    That is a head that fell back on a prior (the majority region) instead of reading the photos.
    The advice agrees with the head: when val already chose it (`chosen_head`), asking for
    `model.head = auto` would be asking for what happened.
    """
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if not len(predicted):
        return None
    top = int(np.bincount(predicted).argmax())
    share, majority_share = float((predicted == top).mean()), float(np.bincount(labels).max() / len(labels))
    if share <= 0.5 or share <= majority_share:
        return None
    advice = ("even the head val chose among the candidates ({chosen_head}) does: more photos, coarser classes or "
              "a stronger backbone would help".format(chosen_head=chosen_head) if chosen_head else
              "on small data let model.head = auto choose a head on val, or train a frozen-feature probe: --set model.head=probe")
    return (f"collapse: {share:.0%} of val goes to class {top} while the largest class holds {majority_share:.0%}; "
            f"the model mostly guesses one place ({advice})")


def trivial_bar(pool: Pool, split_latlon: np.ndarray, centroids: np.ndarray) -> tuple[float, float]:
    """(median km, p90 km) the best trivial baseline reaches on a split, each taken from whichever
    of majority / centroid is better on it: the bar a head must pass on val."""
    if not len(split_latlon):
        return float("nan"), float("nan")
    split = Pool(np.zeros(len(split_latlon), dtype=np.int64), np.asarray(split_latlon, dtype=np.float64))
    scores = [majority(pool, split, centroids), centroid(pool, split, centroids)]
    return min(s["median_km"] for s in scores), min(s["p90_km"] for s in scores)


def target_bar(pool: Pool, split: Pool, centroids: np.ndarray, embedded: tuple[Pool, Pool] | None = None,
               k: int = 5) -> tuple[float, float]:
    """The bar every choice on a split ranks against: the best (median, p90) of the trivial
    baselines and, when both sides have frozen embeddings, the k-NN baseline, each figure taken
    from whichever does better. `embedded` is (pool, split) cut to the rows that have embeddings,
    when some have none: k-NN reads those, the trivial baselines every row.

    The release target asks for a median and p90 below the trivial baselines' and a median not
    worse than 5-NN's. Against the trivial bar alone, val kept a head whose median lost to 5-NN
    whenever its p90 was the better one (the hidden four-view set: 96.7 km beside 5-NN's 83.4).
    5-NN's p90 joins too, though the target does not ask for it: with only the median tightened,
    the median's ratio decided every choice and a candidate sending a tenth of val ten times
    further won by a few metres of median.
    """
    median, p90 = trivial_bar(pool, split.latlon, centroids)
    near, split = embedded or (pool, split)
    if near.embeddings is not None and split.embeddings is not None and len(near.labels) and len(split.latlon):
        unlabelled = Pool(np.zeros(len(split.latlon), dtype=np.int64), split.latlon, split.embeddings)
        neighbours = knn(near, unlabelled, len(centroids), k)
        median, p90 = min(median, neighbours["median_km"]), min(p90, neighbours["p90_km"])
    return median, p90


def bar_ratio(median_km: float, p90_km: float, bar: tuple[float, float]) -> float:
    """How far a position is from beating `bar` (`target_bar`) on both median and p90: below 1 beats it.

    Ranking heads and epochs on val by this (rather than by median alone) aims at what the release
    gate asks, both figures below the best trivial baseline's, and keeps a head that wins the median
    by sending a tenth of the photos far away from being chosen on a small val split.
    """
    ratios = [value / max(limit, 1e-9) for value, limit in zip((median_km, p90_km), bar) if np.isfinite(limit)]
    return max(ratios) if ratios else float(median_km)


def bar_scores(err_km: np.ndarray, bar: tuple[float, float]) -> dict[str, float]:
    """Median and p90 of errors in km, and the `bar_ratio` of their Harrell–Davis estimates
    (`evaluate.quantiles`): what every small-data choice on val ranks by.

    The score reads every error, not the one or two at each quantile: on a dozen val places the
    plain p90 is one place, and the worst errors beyond it counted for nothing (on the real
    benchmark, ranking by these estimates met the target in 5 of 12 runs where the plain
    quantiles met 1).
    """
    from geolocate.evaluate.quantiles import harrell_davis

    median, p90 = float(np.median(err_km)), float(np.percentile(err_km, 90))
    return {"median_km": median, "p90_km": p90,
            "score": bar_ratio(harrell_davis(err_km, 0.5), harrell_davis(err_km, 0.9), bar)}
