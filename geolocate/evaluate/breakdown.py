"""REPORT.md's closer looks at test: metrics per true area, and a strip of sample predictions.

Pure functions of arrays (truth, guesses, errors), so the report stays a function of the results.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


_UNNAMED = {"", "None", "local", "null"}  # what an imported photo's `city` says when nobody named its area
PARENT_LEVELS = 2  # an imported area's table groups by the H3 parent this many levels above the classes


def areas_of(true_names: Sequence[str], truth_latlon: np.ndarray, cell_ids: Sequence[str],
             by: str = "city") -> tuple[list[str], str]:
    """Each test example's area and what the areas are.

    Named areas (the catalog's cities, the scout's regions) when there are at least two; otherwise
    (imported photos, all `local`) the H3 cell `PARENT_LEVELS` coarser than the classes that holds
    the example's true position, so the table says where in the user's area the model is good.
    """
    if len({str(n) for n in true_names} - _UNNAMED) >= 2:
        return [str(n) for n in true_names], by
    resolution = _class_resolution(cell_ids)
    if resolution is None:
        return [str(n) for n in true_names], by
    import h3

    parent = max(resolution - PARENT_LEVELS, 0)
    return [h3.latlng_to_cell(float(lat), float(lon), parent) for lat, lon in truth_latlon], f"H3 cell (res {parent})"


def _class_resolution(cell_ids: Sequence[str]) -> int | None:
    """The finest H3 resolution among the classes (None when they are not H3 cells)."""
    import h3

    found = [h3.get_resolution(c) for c in cell_ids if isinstance(c, str) and h3.is_valid_cell(c)]
    return max(found) if found else None


def per_area(true_areas: Sequence[str], correct: np.ndarray, err_km: np.ndarray) -> list[dict[str, Any]]:
    """One row per true area, most examples first: n, top-1 accuracy, median and p90 km."""
    cities = np.asarray(true_areas, dtype=object)
    rows = []
    for city in sorted(set(true_areas)):
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
