"""REPORT.md's closer looks at test: metrics per true city, and a strip of sample predictions.

Pure functions of arrays (truth, guesses, errors), so the report stays a function of the results.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def per_city(true_cities: Sequence[str], correct: np.ndarray, err_km: np.ndarray) -> list[dict[str, Any]]:
    """One row per true city, most photos first: n, top-1 accuracy, median and p90 km."""
    cities = np.asarray(true_cities, dtype=object)
    rows = []
    for city in sorted(set(true_cities)):
        mask = cities == city
        errors = np.asarray(err_km, dtype=np.float64)[mask]
        rows.append({"city": city, "n": int(mask.sum()), "acc_top1": float(np.mean(np.asarray(correct)[mask])),
                     "median_km": float(np.median(errors)), "p90_km": float(np.percentile(errors, 90))})
    return sorted(rows, key=lambda r: (-r["n"], r["city"]))


def sample_indices(err_km: np.ndarray, k: int = 6) -> list[int]:
    """`k` photos spread evenly from the smallest to the largest error (deterministic)."""
    order = np.argsort(np.asarray(err_km), kind="stable")
    if order.size == 0:
        return []
    picks = np.linspace(0, order.size - 1, num=min(k, order.size)).round().astype(int)
    return [int(order[i]) for i in dict.fromkeys(picks)]


def sample_predictions(image_ids: Sequence[str], true_latlon: np.ndarray, pred_latlon: np.ndarray, err_km: np.ndarray,
                       true_cities: Sequence[str], pred_cities: Sequence[str], k: int = 6) -> list[dict[str, Any]]:
    """Rows of `sample_indices`: photo id, truth, guess (with their cities) and error in km."""
    return [{"image_id": str(image_ids[i]), "true_city": true_cities[i], "pred_city": pred_cities[i],
             "true_lat": float(true_latlon[i, 0]), "true_lon": float(true_latlon[i, 1]),
             "pred_lat": float(pred_latlon[i, 0]), "pred_lon": float(pred_latlon[i, 1]), "error_km": float(err_km[i])}
            for i in sample_indices(err_km, k)]  # fmt: skip
