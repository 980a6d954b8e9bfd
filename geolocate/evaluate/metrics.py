"""Evaluation metrics as pure functions on numpy arrays.

Scores may be logits or probabilities: every ranking metric only compares them. Ties are
broken by the lower class index, exactly as `np.argmax` does, so the top-1 accuracy always
agrees with the predicted cell. Key names of `geo_metrics` are stable: they become columns of
`metrics.csv`, keys of `metrics.json` and the rows of the report.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

WITHIN_KM = (1, 5, 25, 200, 750, 2500)  # 1 / 25 / 200 / 750 / 2,500: the Im2GPS3k / YFCC4k scale
OVER_KM = (200, 500)
TOPK = (1, 5)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of `logits / temperature`, stable for any magnitude."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def label_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each true label among its row's scores (0 = the argmax)."""
    scores, labels = np.asarray(scores), np.asarray(labels, dtype=np.int64)
    true = scores[np.arange(len(labels)), labels][:, None]
    index = np.arange(scores.shape[1])[None, :]
    ahead = (scores > true) | ((scores == true) & (index < labels[:, None]))
    return ahead.sum(axis=1)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Share of rows whose true label is among the `k` highest scores."""
    if len(labels) == 0:
        raise ValueError("top-k accuracy of an empty set")
    return float((label_ranks(scores, labels) < k).mean())


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """[N, k] class indices by decreasing score (ties: lower index first)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    # A stable sort of the negated scores keeps the lower index first among ties.
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def error_stats(err_km: np.ndarray) -> dict[str, float]:
    """Median, mean, p90, p95 error; shares within 1/5/25 km (≤) and beyond 200/500 km (>)."""
    err = np.asarray(err_km, dtype=np.float64)
    if err.size == 0:
        raise ValueError("error statistics of an empty set")
    stats = {
        "median_km": float(np.median(err)),
        "mean_km": float(err.mean()),
        "p90_km": float(np.percentile(err, 90)),
        "p95_km": float(np.percentile(err, 95)),
    }
    stats.update({f"within_{km}km": float((err <= km).mean()) for km in WITHIN_KM})
    stats.update({f"over_{km}km": float((err > km).mean()) for km in OVER_KM})
    return stats


def geo_metrics(
    err_km: np.ndarray,
    scores: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    ks: Sequence[int] = TOPK,
) -> dict[str, float]:
    """Every headline metric in one flat dict with stable keys.

    Keys: `n`, `acc_top1`, `acc_top5` (when `scores` and `labels` are given), `median_km`,
    `mean_km`, `p90_km`, `p95_km`, `within_1km`, `within_5km`, `within_25km`, `over_200km`,
    `over_500km`.
    """
    out: dict[str, float] = {"n": int(np.asarray(err_km).size)}
    if scores is not None and labels is not None:
        ranks = label_ranks(scores, labels)
        out.update({f"acc_top{k}": float((ranks < k).mean()) for k in ks})
    out.update(error_stats(err_km))
    return out


def position_errors_km(pred_latlon: np.ndarray, true_latlon: np.ndarray) -> np.ndarray:
    """[N] great-circle error in km between predicted and true (lat, lon) rows."""
    from geolocate.geo import haversine_km

    pred, true = np.asarray(pred_latlon, dtype=np.float64), np.asarray(true_latlon, dtype=np.float64)
    return haversine_km(pred[:, 0], pred[:, 1], true[:, 0], true[:, 1])


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """[n_classes, n_classes] counts, rows = true class, columns = predicted class."""
    labels, preds = np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    flat = np.bincount(labels * n_classes + preds, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def stability_std_km(val_median_km: Iterable[float], last_k: int) -> float:
    """Std of val median km over the last `last_k` epochs: the card's "no yo-yos".

    The population std (ddof=0): it describes the swings those epochs actually showed rather
    than estimating a wider population. NaN when fewer than two epochs exist, since one value
    shows nothing about stability (a gate on it then fails, as it should).
    """
    tail = np.asarray(list(val_median_km), dtype=np.float64)[-last_k:]
    if tail.size < 2:
        return float("nan")
    return float(tail.std())


def stability_mean_km(val_median_km: Iterable[float], last_k: int) -> float:
    """Mean val median km over the same last `last_k` epochs (what a relative stability gate divides by)."""
    tail = np.asarray(list(val_median_km), dtype=np.float64)[-last_k:]
    return float(tail.mean()) if tail.size else float("nan")


def aggregate_seeds(runs: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample std (ddof=1, 0 for a single run) of every numeric key common to all `runs`.

    For `geolocate train --seeds N`: `{"median_km": {"mean": .., "std": ..}, ...}`.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    keys = [k for k in runs[0] if all(k in r for r in runs) and _is_number(runs[0][k])]
    out = {}
    for key in keys:
        values = np.array([float(r[key]) for r in runs])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {"mean": float(values.mean()), "std": std}
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
