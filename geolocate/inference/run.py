"""`geolocate predict` for single-view models: files in, a table / JSON / CSV / Parquet out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from rich.markup import escape
from rich.table import Table

from geolocate import atomic
from geolocate.console import console, emit, stdout
from geolocate.data.images import expand_photos
from geolocate.errors import UserError
from geolocate.files import not_regular_reason

if TYPE_CHECKING:
    from geolocate.inference.predictor import Failure


def run_predict(ref, paths, photos: list[Path], top: int, batch_size: int, truth: tuple[float, float] | None,
                out: Path | None, as_json: bool) -> int:
    """Predict, print and write; returns the exit code (1 when some photo failed)."""
    files = expand_photos(photos)
    if not files:
        raise UserError(f"no photos found in {', '.join(map(str, photos))}")
    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: use a .csv or .parquet file name")
    from geolocate.artifacts.resolve import resolve_checkpoint

    resolve_checkpoint(ref, paths)  # a missing model is said first, as before
    if len(files) == 1 and (reason := not_regular_reason(files[0])) is not None:
        raise UserError(f"{files[0]}: {reason}")  # before torch and the model load: nothing to predict
    from geolocate.inference.predictor import Predictor

    predictor = Predictor.load(ref, paths)
    truths = {str(f): truth for f in files} if truth else None
    rows, failures = predictor.predict_files(files, top=top, batch_size=batch_size, truth=truths)
    if len(files) == 1 and failures:
        raise UserError(failures[0].reason)
    if out is not None:  # written first: a photo name that cannot be printed must not lose the batch
        _write(out, rows)
    _show(rows, failures, as_json)
    if out is not None:
        console.print(f"[green]✓[/] wrote {len(rows)} rows to {out}")
    return 1 if failures else 0


def _show(rows: list[dict], failures: list[Failure], as_json: bool) -> None:
    for f in failures:
        console.print(f"[red]error:[/] {escape(f.reason)}", soft_wrap=True)
    if as_json:
        emit({"predictions": rows, "failures": [f.__dict__ for f in failures]}, as_json)
        return
    if len(rows) <= 5:
        for row in rows:
            stdout.print(_row_table(row))
    else:
        stdout.print(_summary_table(rows))


def _row_table(row: dict) -> Table:
    title = f"{escape(row['file'])}: {row['lat']:.5f}, {row['lon']:.5f}  (confidence {row['confidence']:.1%})"
    if row["error_km"] is not None:
        title += f"  error {row['error_km']:.2f} km"
    table = Table(title=title, title_justify="left")
    for col in ("rank", "cell id", "city", "lat", "lon", "probability"):
        table.add_column(col, justify="right" if col in ("rank", "lat", "lon", "probability") else "left")
    for c in row["top"]:
        table.add_row(str(c["rank"]), c["cell_id"], str(c["city"]), f"{c['lat']:.5f}", f"{c['lon']:.5f}", f"{c['prob']:.1%}")
    return table


def _summary_table(rows: list[dict]) -> Table:
    table = Table(title=f"{len(rows)} photos")
    for col in ("file", "lat", "lon", "top-1 city", "confidence", "error km"):
        table.add_column(col)
    for r in rows:
        err = "" if r["error_km"] is None else f"{r['error_km']:.2f}"
        table.add_row(escape(r["file"]), f"{r['lat']:.5f}", f"{r['lon']:.5f}", str(r["top"][0]["city"]), f"{r['confidence']:.1%}", err)
    return table


def flat_rows(rows: list[dict]) -> pl.DataFrame:
    """One flat row per photo: position, confidence, error and the top-k as columns."""
    flat = []
    for r in rows:
        item = {k: r[k] for k in ("file", "lat", "lon", "confidence", "true_lat", "true_lon", "error_km")}
        for c in r["top"]:
            item[f"top{c['rank']}_cell"], item[f"top{c['rank']}_city"], item[f"top{c['rank']}_prob"] = c["cell_id"], c["city"], c["prob"]
        flat.append(item)
    return pl.DataFrame(flat, infer_schema_length=None)


def _write(out: Path, rows: list[dict]) -> None:
    df = flat_rows(rows)
    with atomic.atomic_path(out) as tmp:
        df.write_csv(tmp) if out.suffix.lower() == ".csv" else df.write_parquet(tmp)
