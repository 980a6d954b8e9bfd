"""Plots as functions returning matplotlib Figures (the caller saves them; nothing global).

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so no backend or global
figure registry is involved and nothing leaks between calls; `fig.savefig(path)` works as is.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from geolocate.evaluate.metrics import confusion_matrix

ERROR_FLOOR_KM = 1e-3  # 1 m: a log axis cannot show a zero error, so exact hits sit here


def _row_normalise(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)


def top_support_confusion(labels, preds, n_classes: int, top_n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalised confusion over the `top_n` classes with most support, plus "other".

    Returns the [n + 1, n + 1] matrix and the class indices, by decreasing support. The last
    column collects predictions outside those classes and the last row photos whose true class
    is outside them, so rows and columns name the same classes and no mass disappears.
    """
    full = confusion_matrix(labels, preds, n_classes)
    support = full.sum(axis=1)
    order = np.argsort(-support, kind="stable")[: min(top_n, n_classes)]
    order = order[support[order] > 0]
    rest = np.setdiff1d(np.arange(n_classes), order)
    grouped = np.zeros((order.size + 1, order.size + 1), dtype=full.dtype)
    grouped[:-1, :-1] = full[np.ix_(order, order)]
    grouped[:-1, -1] = full[np.ix_(order, rest)].sum(axis=1)
    grouped[-1, :-1] = full[np.ix_(rest, order)].sum(axis=0)
    grouped[-1, -1] = full[np.ix_(rest, rest)].sum()
    return _row_normalise(grouped), order


def city_confusion(labels, preds, class_cities: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Row-normalised confusion aggregated by city, and the city names (sorted)."""
    cities = sorted(set(class_cities))
    city_of = np.array([cities.index(c) for c in class_cities])
    matrix = confusion_matrix(city_of[np.asarray(labels)], city_of[np.asarray(preds)], len(cities))
    return _row_normalise(matrix), cities


def confusion_matrix_figure(
    labels: np.ndarray,
    preds: np.ndarray,
    class_cities: Sequence[str],
    class_names: Sequence[str] | None = None,
    top_n: int = 30,
) -> Figure:
    """Two panels readable with hundreds of classes: the `top_n` cells by support, and by city.

    Args:
        labels: [N] true class indices.
        preds: [N] predicted class indices.
        class_cities: city label of each class (row = class index).
        class_names: tick label of each class (default "city #index"; evaluation passes
            `cell_label`, the city and a short H3 id).
        top_n: classes shown in the left panel.
    """
    if len(labels) == 0:
        raise ValueError("no predictions to draw a confusion matrix from")
    names = list(class_names) if class_names is not None else [f"{c} #{i}" for i, c in enumerate(class_cities)]
    cells, order = top_support_confusion(labels, preds, len(class_cities), top_n)
    by_city, cities = city_confusion(labels, preds, class_cities)
    fig = Figure(figsize=(17, 8), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.15, 1])
    ticks = [names[i] for i in order] + ["other"]
    _matrix_panel(fig, left, cells, ticks, ticks)
    left.set_title(f"Top {len(order)} cells by support (row-normalised)")
    _matrix_panel(fig, right, by_city, cities, cities, annotate=len(cities) <= 15)
    right.set_title("Aggregated by city (row-normalised)")
    return fig


def _matrix_panel(fig: Figure, ax, matrix: np.ndarray, rows: list[str], cols: list[str], annotate: bool = False) -> None:
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    fontsize = 6 if max(len(rows), len(cols)) > 20 else 8
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(rows)), rows, fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if annotate:
        for (i, j), value in np.ndenumerate(matrix):
            if value >= 0.005:
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value > 0.5 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true row")


def geo_error_figure(err_km: np.ndarray, markers_km: Sequence[float] = (1.0, 5.0)) -> Figure:
    """Error CDF on a log-km axis with markers (default 1 and 5 km), and a log-binned histogram."""
    err = np.sort(np.maximum(np.asarray(err_km, dtype=np.float64), ERROR_FLOOR_KM))
    if err.size == 0:
        raise ValueError("no errors to plot")
    fig = Figure(figsize=(13, 5), layout="constrained")
    cdf_ax, hist_ax = fig.subplots(1, 2)
    share = np.arange(1, err.size + 1) / err.size
    cdf_ax.step(err, share, where="post", color="tab:blue")
    for km, colour in zip(markers_km, ("tab:green", "tab:orange", "tab:red")):
        within = float((err <= km).mean())
        cdf_ax.axvline(km, color=colour, linestyle="--", label=f"{km:g} km: {within:.1%} within")
    cdf_ax.set(xscale="log", ylim=(0, 1), xlabel="error (km, log scale)", ylabel="share of photos within")
    cdf_ax.set_title(f"Error CDF (median {np.median(err):.2f} km, n = {err.size})")
    cdf_ax.grid(True, which="both", alpha=0.3)
    cdf_ax.legend(loc="lower right")
    bins = np.geomspace(ERROR_FLOOR_KM, max(err.max(), ERROR_FLOOR_KM * 10), 40)
    hist_ax.hist(err, bins=bins, color="tab:blue", alpha=0.8)
    hist_ax.set(xscale="log", xlabel="error (km, log scale)", ylabel="photos")
    hist_ax.set_title(f"Error histogram (errors under {ERROR_FLOOR_KM * 1000:g} m shown at {ERROR_FLOOR_KM * 1000:g} m)")
    return fig


def kpi_history_figure(kpi_df, top_share_limit: float = 0.25) -> Figure:
    """Data KPIs per `geolocate cells` run (rows of `kpi_history.parquet`, schema `schemas.KPI`).

    Three panels: photos and classes; photos per cell (min, median, max); the top class's
    share against `top_share_limit` (cells.max_dominance).
    """
    if kpi_df.height == 0:
        raise ValueError("the KPI history is empty")
    x = np.arange(kpi_df.height)
    ticks = [str(b) for b in kpi_df["batches"].to_list()]
    fig = Figure(figsize=(11, 10), layout="constrained")
    sizes, per_cell, dominance = fig.subplots(3, 1, sharex=True)
    sizes.plot(x, kpi_df["photos"].to_numpy(), "o-", color="tab:blue", label="photos")
    sizes.set_ylabel("photos", color="tab:blue")
    classes = sizes.twinx()
    classes.plot(x, kpi_df["classes"].to_numpy(), "s--", color="tab:orange", label="classes")
    classes.set_ylabel("classes", color="tab:orange")
    for counts in (sizes, classes):  # photos and classes are whole numbers: no 2.5-class ticks
        counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    sizes.set_title("Photos (left axis) and classes (right axis)")
    for column, style in (("max_per_cell", "^-"), ("median_per_cell", "o-"), ("min_per_cell", "v-")):
        per_cell.plot(x, kpi_df[column].to_numpy(), style, label=column.replace("_", " "))
    per_cell.set(yscale="log", ylabel="photos per cell", title="Photos per cell")
    per_cell.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 100, not 10²
    per_cell.yaxis.set_minor_formatter(FuncFormatter(_label_2_and_5))
    per_cell.legend(loc="best")
    share = kpi_df["top_class_share"].to_numpy()
    dominance.plot(x, share, "o-", color="tab:purple", label="top class share")
    dominance.axhline(top_share_limit, color="tab:red", linestyle="--", label=f"limit {top_share_limit:.0%}")
    top = min(1.0, max(1.6 * top_share_limit, 1.15 * float(np.nanmax(share))))
    dominance.set(ylabel="share of train", title="Largest class share", ylim=(0, top))
    dominance.legend(loc="best")
    dominance.set_xticks(x, ticks, rotation=30, ha="right")
    dominance.set_xlabel("batches")
    return fig


def _label_2_and_5(value: float, _position) -> str:
    """Minor log-axis labels at 2·10ⁿ and 5·10ⁿ only: enough to read a value, not a wall of digits."""
    if value <= 0:
        return ""
    leading = round(value / 10 ** np.floor(np.log10(value)))
    return f"{value:g}" if leading in (2, 5) else ""


def error_map_figure(cell_ids: Sequence[str], err_km: np.ndarray, centroids_latlon: np.ndarray) -> Figure:
    """Test photos' H3 cells (their true cell) coloured by the median error there; no basemap needed.

    Args:
        cell_ids: [N] true cell of each test photo.
        err_km: [N] its error.
        centroids_latlon: [N, 2] its cell's centroid (where a non-H3 class is drawn as a dot).
    """
    import h3
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import LogNorm

    cells = sorted(set(cell_ids))
    ids, err = np.asarray(cell_ids), np.asarray(err_km, dtype=np.float64)
    medians = np.array([np.median(err[ids == c]) for c in cells])
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    norm = LogNorm(vmin=max(ERROR_FLOOR_KM, medians.min(initial=1.0)), vmax=max(medians.max(initial=1.0), 2 * ERROR_FLOOR_KM))
    polygons = [[(lng, lat) for lat, lng in h3.cell_to_boundary(c)] if h3.is_valid_cell(c) else None for c in cells]
    shapes = [(p, m) for p, m in zip(polygons, medians) if p is not None]
    if shapes:
        collection = PolyCollection([p for p, _ in shapes], array=np.maximum([m for _, m in shapes], ERROR_FLOOR_KM),
                                    cmap="viridis", norm=norm, edgecolors="0.3", linewidths=0.3)
        ax.add_collection(collection)
        fig.colorbar(collection, ax=ax, label="median error (km)")
    dots = [i for i, p in enumerate(polygons) if p is None]
    if dots:
        where = {c: centroids_latlon[list(ids).index(c)] for c in (cells[i] for i in dots)}
        ax.scatter([where[cells[i]][1] for i in dots], [where[cells[i]][0] for i in dots],
                   c=np.maximum(medians[dots], ERROR_FLOOR_KM), cmap="viridis", norm=norm, s=25)
    ax.autoscale_view()
    ax.set_aspect(1 / max(np.cos(np.radians(np.mean(centroids_latlon[:, 0]))), 0.1))
    ax.set(xlabel="longitude", ylabel="latitude", title=f"Median test error per cell ({len(cells)} cells, {len(err)} photos)")
    return fig
