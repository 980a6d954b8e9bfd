"""`run_kpi`: the data-set KPI history (one row per `geolocate cells`) as a table and a figure.

The figure goes next to its table, `data/kpi_history.png` by default: it describes the data
set, not a training run, and like `kpi_history.parquet` it changes whenever a batch is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from geolocate.atomic import atomic_path
from geolocate.cells.kpi import read_kpi_history
from geolocate.errors import UserError
from geolocate.paths import DataPaths

FIGURE_NAME = "kpi_history.png"
MIN_FIGURE_ROWS = 3  # one or two points make a dot or a segment, not a history: the table says more


@dataclass
class KpiReport:
    """The KPI history and where its figure was written (None when the history is empty)."""

    history: pl.DataFrame
    figure: Path | None

    def to_dict(self) -> dict:
        rows = [{k: (v.isoformat() if k == "timestamp" else v) for k, v in row.items()} for row in self.history.to_dicts()]
        return {"figure": str(self.figure) if self.figure else None, "history": rows}


def default_figure_path(data: DataPaths) -> Path:
    """`data/kpi_history.png`, beside `kpi_history.parquet`."""
    return data.root / FIGURE_NAME


def run_kpi(data: DataPaths, top_share_limit: float, out: Path | None = None, figure: bool = True) -> KpiReport:
    """Read the KPI history and draw `kpi_history.png` (photos, classes, per-cell spread, top share).

    Args:
        data: the data directory holding `kpi_history.parquet`.
        top_share_limit: the dominance limit drawn on the top-class panel (`cells.max_dominance`).
        out: where the figure goes (default `data/kpi_history.png`).
        figure: False to skip the figure (the table alone). It is skipped too while the history
            has fewer than `MIN_FIGURE_ROWS` rows.

    Raises:
        UserError: no history yet (run `geolocate cells`), or the figure cannot be written.
    """
    history = read_kpi_history(data)
    if history.is_empty():
        raise UserError(f"no KPI history at {data.kpi_history}; run `geolocate cells` (or `geolocate batch NN`) first")
    if not figure or history.height < MIN_FIGURE_ROWS:
        return KpiReport(history, None)
    target = Path(out) if out is not None else default_figure_path(data)
    save_kpi_figure(history, top_share_limit, target)
    return KpiReport(history, target)


def save_kpi_figure(history: pl.DataFrame, top_share_limit: float, target: Path) -> None:
    """Draw the history and write it as a PNG, atomically."""
    from geolocate.evaluate.plots import kpi_history_figure

    fig = kpi_history_figure(history, top_share_limit=top_share_limit)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
