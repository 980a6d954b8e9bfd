"""`geolocate predict` for single-view models: files in, a table / JSON / CSV / Parquet / GeoJSON out."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from geolocate import atomic
from geolocate.console import console, emit, stdout
from geolocate.data.images import expand_photos
from geolocate.errors import UserError
from geolocate.inference.photo_predictor import Failure
from geolocate.inference.provenance import describe_model, model_line


def run_predict(ref, paths, photos: list[Path], top: int, batch_size: int, truth: tuple[float, float] | None,
                out: Path | None, as_json: bool, engine: str = "auto", geojson: Path | None = None) -> int:
    """Predict, print and write; returns the exit code (1 when some photo failed)."""
    from geolocate.inference.predictor import load_predictor

    files = expand_photos(photos)
    if not files:
        raise UserError(f"no photos found in {', '.join(map(str, photos))}")
    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: use a .csv or .parquet file name")
    predictor = load_predictor(ref, paths, engine)
    truths = {str(f): truth for f in files} if truth else None
    rows, failures = predictor.predict_files(files, top=top, batch_size=batch_size, truth=truths)
    if len(files) == 1 and failures:
        raise UserError(failures[0].reason)
    about = describe_model(predictor.meta, predictor.engine)
    _say_which_model(about)  # after the one-line error above: a failed photo says only what went wrong
    _show(rows, failures, as_json, about)
    if out is not None:
        _write(out, rows)
    if geojson is not None:
        from geolocate.inference.geojson import write_geojson

        write_geojson(geojson, rows, about)
        console.print(f"[green]✓[/] wrote {geojson} (GeoJSON, {len(rows)} photos)")
    return 1 if failures else 0


def _say_which_model(about: dict) -> None:
    console.print(model_line(about), soft_wrap=True, style="dim")
    if about["synthetic"]:
        console.print("[yellow]warning:[/] this model was trained on synthetic photos; its answers for real photos mean nothing")


def _show(rows: list[dict], failures: list[Failure], as_json: bool, about: dict) -> None:
    for f in failures:
        console.print(f"[red]error:[/] {f.reason}", soft_wrap=True)
    if as_json:
        emit({"model": about, "predictions": rows, "failures": [f.__dict__ for f in failures]}, as_json)
        return
    if len(rows) <= 5:
        for row in rows:
            stdout.print(_row_table(row))
    else:
        stdout.print(_summary_table(rows))


def _radius(row: dict) -> str:
    return "" if row.get("radius_km") is None else f"{row['radius_km']:.1f} km"


def _row_table(row: dict) -> Table:
    title = f"{row['file']}: {row['lat']:.5f}, {row['lon']:.5f}  (confidence {row['confidence']:.1%})"
    if row.get("radius_km") is not None:
        title += f"  90% within {_radius(row)}"
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
    for col in ("file", "lat", "lon", "top-1 city", "confidence", "90% radius", "error km"):
        table.add_column(col)
    for r in rows:
        err = "" if r["error_km"] is None else f"{r['error_km']:.2f}"
        table.add_row(r["file"], f"{r['lat']:.5f}", f"{r['lon']:.5f}", str(r["top"][0]["city"]), f"{r['confidence']:.1%}", _radius(r), err)
    return table


def flat_rows(rows: list[dict]):
    """One flat row per photo (a polars DataFrame): position, confidence, radius, error and the top-k as columns."""
    import polars as pl  # only for --out: a plain predict does not pay for it

    flat = []
    for r in rows:
        item = {k: r.get(k) for k in ("file", "lat", "lon", "confidence", "radius_km", "true_lat", "true_lon", "error_km")}
        for c in r["top"]:
            item[f"top{c['rank']}_cell"], item[f"top{c['rank']}_city"], item[f"top{c['rank']}_prob"] = c["cell_id"], c["city"], c["prob"]
        flat.append(item)
    return pl.DataFrame(flat, infer_schema_length=None)


def _write(out: Path, rows: list[dict]) -> None:
    df = flat_rows(rows)
    with atomic.atomic_path(out) as tmp:
        df.write_csv(tmp) if out.suffix.lower() == ".csv" else df.write_parquet(tmp)
    console.print(f"[green]✓[/] wrote {len(rows)} rows to {out}")
