"""Data-set KPIs after each `geolocate cells`, appended to `kpi_history.parquet`.

The history answers "did the last batch help?": one row per run with the batches present,
photos, classes, and how balanced the classes are.
"""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from geolocate import atomic
from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.schemas import KPI, conform, empty


def batches_present(manifest: pl.DataFrame) -> str:
    """Sorted distinct non-empty `batch` values joined with ',' (e.g. '01,02,03')."""
    values = manifest["batch"].drop_nulls().unique().to_list()
    return ",".join(sorted(v for v in values if v))


def compute_kpis(cells: pl.DataFrame, batches: str, now: datetime | None = None) -> dict:
    """One KPI row (schema KPI) from the cells table.

    Args:
        cells: the cells table (one row per class, `n_images`).
        batches: the batches present, as `batches_present` returns them.
        now: timestamp of the row (default: the current UTC time).
    """
    counts = cells["n_images"]
    photos = int(counts.sum()) if len(counts) else 0
    return {
        "timestamp": now or datetime.now(timezone.utc),
        "batches": batches,
        "photos": photos,
        "classes": len(counts),
        "min_per_cell": int(counts.min()) if len(counts) else 0,
        "median_per_cell": float(counts.median()) if len(counts) else 0.0,
        "max_per_cell": int(counts.max()) if len(counts) else 0,
        "top_class_share": float(counts.max() / photos) if photos else 0.0,
    }


def read_kpi_history(data: DataPaths) -> pl.DataFrame:
    """Every KPI row recorded so far (empty frame when none)."""
    if not data.kpi_history.exists():
        return empty(KPI)
    try:
        return conform(pl.read_parquet(data.kpi_history), KPI)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserError(f"cannot read {data.kpi_history} ({exc}); move it aside and run `geolocate cells` again") from None


def append_kpi_history(data: DataPaths, row: dict) -> pl.DataFrame:
    """Append `row` to the history (atomically) and return the whole history.

    A row that repeats the last one in everything but its timestamp is not appended: rerunning
    `cells` on unchanged data is not a new point of the history.
    """
    new = conform(pl.DataFrame([row]), KPI)
    old = read_kpi_history(data)
    if old.height and old.tail(1).drop("timestamp").equals(new.drop("timestamp")):
        return old
    history = pl.concat([old, new], how="vertical")
    atomic.write_parquet(data.kpi_history, history)
    return history
