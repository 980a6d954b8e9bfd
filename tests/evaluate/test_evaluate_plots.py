"""Plots return Figures with the expected panels; the matrices behind them are right."""

from __future__ import annotations

from datetime import datetime, timezone

import matplotlib
import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

from geolocate.evaluate.plots import (
    city_confusion,
    confusion_matrix_figure,
    geo_error_figure,
    kpi_history_figure,
    top_support_confusion,
)
from geolocate.schemas import KPI, conform

matplotlib.use("Agg")


@pytest.fixture
def close_figures():
    figures: list[Figure] = []
    yield figures.append
    for fig in figures:
        fig.clf()


def test_top_support_confusion_keeps_every_prediction():
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 1, 2, 1, 1, 0])
    matrix, order = top_support_confusion(labels, preds, n_classes=3, top_n=2)
    assert order.tolist() == [0, 1]
    # Row 0: one right, one to class 1, one to class 2 (outside the top 2 → "other" column);
    # class 2's photo (truth outside the top 2) is the "other" row, so the matrix is square.
    np.testing.assert_allclose(matrix, [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def test_city_confusion_aggregates_cells():
    matrix, cities = city_confusion(np.array([0, 1, 2, 2]), np.array([1, 0, 2, 0]), ["Paris", "Paris", "Lyon"])
    assert cities == ["Lyon", "Paris"]
    np.testing.assert_allclose(matrix, [[0.5, 0.5], [0.0, 1.0]])  # cell swaps inside Paris count as right


def test_confusion_figure_with_hundreds_of_classes(close_figures):
    rng = np.random.default_rng(0)
    cities = [f"city{i % 12}" for i in range(300)]
    labels = rng.integers(0, 300, 3000)
    preds = np.where(rng.random(3000) < 0.6, labels, rng.integers(0, 300, 3000))
    fig = confusion_matrix_figure(labels, preds, cities, top_n=30)
    close_figures(fig)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # two matrices, two colour bars
    assert fig.axes[0].images[0].get_array().shape == (31, 31)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "other"
    assert fig.axes[1].images[0].get_array().shape == (12, 12)
    with pytest.raises(ValueError):
        confusion_matrix_figure(np.array([], dtype=int), np.array([], dtype=int), cities)


def test_geo_error_figure(tmp_path, close_figures):
    err = np.random.default_rng(1).lognormal(0.0, 1.5, 500)
    err[:5] = 0.0  # exact hits must survive the log axis
    fig = geo_error_figure(err)
    close_figures(fig)
    cdf, hist = fig.axes
    assert cdf.get_xscale() == "log" and hist.get_xscale() == "log"
    legend = [t.get_text() for t in cdf.get_legend().get_texts()]
    assert legend[0].startswith("1 km:") and legend[1].startswith("5 km:")
    fig.savefig(tmp_path / "geo_error.png")
    assert (tmp_path / "geo_error.png").stat().st_size > 1000


def test_kpi_history_figure(close_figures):
    now = datetime(2026, 11, 21, tzinfo=timezone.utc)
    kpi = conform(
        pl.DataFrame(
            {
                "timestamp": [now, now, now],
                "batches": ["01", "01,02", "01,02,03"],
                "photos": [1000, 2500, 4000],
                "classes": [5, 12, 20],
                "min_per_cell": [150, 150, 160],
                "median_per_cell": [180.0, 190.0, 200.0],
                "max_per_cell": [400, 600, 700],
                "top_class_share": [0.4, 0.24, 0.17],
            }
        ),
        KPI,
    )
    fig = kpi_history_figure(kpi, top_share_limit=0.25)
    close_figures(fig)
    assert len(fig.axes) == 4  # three panels plus the classes axis twinned on the first
    dominance = fig.axes[2]
    assert any(np.allclose(line.get_ydata(), 0.25) for line in dominance.get_lines())
    with pytest.raises(ValueError):
        kpi_history_figure(kpi.head(0))


def test_cell_label_tells_cells_of_one_city_apart():
    from geolocate.cells.classes import cell_label

    assert cell_label("Paris", "871fb4662ffffff") == "Paris 4662"
    assert cell_label("Paris", "871fb4660ffffff") != cell_label("Paris", "871fb4662ffffff")
