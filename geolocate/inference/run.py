"""`geolocate predict` for single-view models: files in, a table / JSON / CSV / Parquet / GeoJSON out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from geolocate import atomic
from geolocate.cells.classes import cell_label
from geolocate.console import console, csv_safe, emit, inert, stdout
from geolocate.data.images import IMAGE_SUFFIXES, expand_photos
from geolocate.errors import UserError
from geolocate.inference.photo_predictor import Failure
from geolocate.inference.provenance import describe_model, model_line
from geolocate.files import not_regular_reason, refuse_outputs_over_inputs


def run_predict(ref, paths, photos: list[Path], top: int, batch_size: int, truth: tuple[float, float] | None,
                out: Path | None, as_json: bool, engine: str = "auto", geojson: Path | None = None,
                device: str = "cpu") -> int:
    """Predict, print and write; returns the exit code (1 when some photo failed).

    `device` is `predict.device` (auto, cpu, cuda, cuda:N, mps); it matters only on the torch engine.
    """
    from geolocate.artifacts.resolve import resolve_checkpoint
    from geolocate.inference.predictor import load_predictor

    files = expand_photos(photos)
    if not files:
        raise UserError(f"no photos found in {', '.join(map(str, photos))}")
    refuse_outputs_over_inputs({"--out": out, "--geojson": geojson}, files, IMAGE_SUFFIXES)
    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: use a .csv or .parquet file name")
    stem = resolve_checkpoint(ref, paths)  # a missing model is said first, as before
    if len(files) == 1 and (reason := not_regular_reason(files[0])) is not None:
        raise UserError(f"{files[0]}: {reason}")  # before torch and the model load: nothing to predict
    predictor = load_predictor(stem, paths, engine, device)  # resolved once, here
    truths = {str(f): truth for f in files} if truth else None
    rows, failures = predictor.predict_files(files, top=top, batch_size=batch_size, truth=truths)
    if len(files) == 1 and failures:
        raise UserError(failures[0].reason)
    about = describe_model(predictor.meta, predictor.engine)
    _say_which_model(about)  # after the one-line error above: a failed photo says only what went wrong
    if out is not None:  # written first: a photo name that cannot be printed must not lose the batch
        _write(out, rows)
    if geojson is not None:
        from geolocate.inference.geojson import write_geojson

        write_geojson(geojson, rows, about)
    _show(rows, failures, as_json, about, display_names(photos, files))
    if out is not None:
        console.print(f"[green]✓[/] wrote {len(rows)} rows to {out}")
    if geojson is not None:
        console.print(f"[green]✓[/] wrote {geojson} (GeoJSON, {len(rows)} photos)")
    return 1 if failures else 0


def _say_which_model(about: dict) -> None:
    console.print(inert(model_line(about)), soft_wrap=True, style="dim")
    if about["synthetic"]:
        console.print("[yellow]warning:[/] this model was trained on synthetic photos; its answers for real photos mean nothing")


def display_names(photos: list[Path], files: list[Path]) -> dict[str, str]:
    """Each file as the table shows it: relative to the folder it was found in, else as given."""
    folders = [p for p in photos if p.is_dir()]
    names = {}
    for f in files:
        folder = next((d for d in folders if f.is_relative_to(d)), None)
        names[str(f)] = str(f.relative_to(folder)) if folder is not None else str(f)
    return names


def _show(rows: list[dict], failures: list[Failure], as_json: bool, about: dict, names: dict[str, str]) -> None:
    for f in failures:
        console.print(f"[red]error:[/] {inert(f.reason)}", soft_wrap=True)
    if as_json:
        emit({"model": about, "predictions": rows, "failures": [f.__dict__ for f in failures]}, as_json)
        return
    if len(rows) == 1 and not failures:
        stdout.print(_row_table(rows[0]))
        return
    if rows:
        stdout.print(_photos_table(rows, names))
    stdout.print(summary_line(rows, failures), soft_wrap=True)


def summary_line(rows: list[dict], failures: list[Failure]) -> str:
    """'12 photos, 1 failed; median error 3.41 km over 10 with known truth' (EXIF GPS or --lat/--lon)."""
    line = f"{len(rows) + len(failures)} photos, {len(failures)} failed"
    errors = sorted(r["error_km"] for r in rows if r.get("error_km") is not None)
    if errors:
        line += f"; median error {float(np.median(errors)):.2f} km over {len(errors)} with known truth"
    return line


def _radius(row: dict) -> str:
    return "" if row.get("radius_km") is None else f"{row['radius_km']:.1f} km"


def _row_table(row: dict) -> Table:
    title = f"{inert(row['file'])}: {row['lat']:.5f}, {row['lon']:.5f}  (confidence {row['confidence']:.1%})"
    if row.get("radius_km") is not None:
        title += f"  90% within {_radius(row)}"
    if row["error_km"] is not None:
        title += f"  error {row['error_km']:.2f} km"
    table = Table(title=title, title_justify="left")
    for col in ("rank", "cell id", "city", "lat", "lon", "probability"):
        table.add_column(col, justify="right" if col in ("rank", "lat", "lon", "probability") else "left")
    for c in row["top"]:
        table.add_row(str(c["rank"]), inert(c["cell_id"]), inert(c["city"]), f"{c['lat']:.5f}", f"{c['lon']:.5f}", f"{c['prob']:.1%}")
    return table


def _photos_table(rows: list[dict], names: dict[str, str]) -> Table:
    """One row per photo with its top-k (every --top class, one per line); long names fold, never cut."""
    table = Table(title=f"{len(rows)} photos", title_justify="left")
    table.add_column("file", overflow="fold", ratio=2)
    table.add_column("lat, lon (90% radius)", no_wrap=True)
    table.add_column("top classes", overflow="fold", ratio=2)
    table.add_column("error km", justify="right", no_wrap=True)
    for r in rows:
        top = "\n".join(f"{c['rank']}. {inert(cell_label(c['city'], c['cell_id']))} {c['prob']:.0%}" for c in r["top"])
        err = "" if r["error_km"] is None else f"{r['error_km']:.2f}"
        where = f"{r['lat']:.4f}, {r['lon']:.4f}" + (f"\n± {_radius(r)}" if r.get("radius_km") is not None else "")
        table.add_row(inert(names.get(r["file"], r["file"])), where, top, err)
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
    df = csv_safe(df) if out.suffix.lower() == ".csv" else df
    with atomic.atomic_path(out) as tmp:
        df.write_csv(tmp) if out.suffix.lower() == ".csv" else df.write_parquet(tmp)
