"""`geolocate predict`'s output: a loaded `Geolocator`'s answers as a table / JSON / CSV / Parquet / GeoJSON.

Single photos and four-view locations give rows with the same fields (`inference.result`), so
everything here serves both systems; which inputs a command reads is `systems.predict_inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from rich.table import Table

from geolocate import atomic
from geolocate.console import console, csv_safe, emit, inert, stdout
from geolocate.data.images import IMAGE_SUFFIXES, expand_photos
from geolocate.errors import UserError
from geolocate.files import not_regular_reason, refuse_outputs_over_inputs
from geolocate.inference.provenance import model_line
from geolocate.inference.result import Failure

OUT_SUFFIXES = (".csv", ".parquet")


@dataclass
class Inputs:
    """What one `predict` command asks about: photos, or four-view locations (dicts view → photo)."""

    items: list
    names: list[str]  # how results and failures name each item (a path, a location id)
    truths: list | None = None  # (lat, lon) or None per item; None: EXIF GPS where a photo has it
    shown: dict[str, str] = field(default_factory=dict)  # the table's shorter name for a result
    noun: str = "photos"
    guarded: list[Path] = field(default_factory=list)  # files besides the photos that outputs must not replace (a table)
    skipped: list[Failure] = field(default_factory=list)  # entries of a folder never opened (links, FIFOs): failed inputs

    @property
    def count(self) -> int:
        """How many inputs were asked about: the items and the skipped entries."""
        return len(self.items) + len(self.skipped)

    def files(self) -> list[Path]:
        """Every input file: the photos (or the views of each location) and the guarded ones."""
        views = [v for item in self.items for v in (item.values() if isinstance(item, dict) else [item])]
        return [Path(v) for v in views if isinstance(v, (str, Path))] + list(self.guarded)


def photo_inputs(photos: list[Path], truth: tuple[float, float] | None) -> Inputs:
    """Files and folders of photos as `predict` inputs (folders expanded, sorted).

    A link or special file inside a folder is a failed input with its reason (`expand_photos`).
    """
    if not photos:
        raise UserError("no photo given; usage: geolocate predict photo.jpg [--top 5]")
    files, skipped = expand_photos(photos)
    if not files and not skipped:
        raise UserError(f"no photos found in {', '.join(map(str, photos))}")
    if len(files) == 1 and not skipped and (reason := not_regular_reason(files[0])) is not None:
        raise UserError(f"{files[0]}: {reason}")
    return Inputs(files, [str(f) for f in files], [truth] * len(files) if truth else None, display_names(photos, files),
                  skipped=[Failure(name, f"{name}: skipped ({reason})") for name, reason in skipped.items()])


def check_out(out: Path | None) -> None:
    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise UserError(f"--out {out}: use a .csv or .parquet file name")


def run_predict(geolocator, inputs: Inputs, top: int, batch_size: int, out: Path | None, as_json: bool,
                geojson: Path | None = None) -> int:
    """Predict with a loaded `Geolocator`, print and write; returns the exit code (1 when some input failed).

    A run where nothing could be predicted lists the failures and ends with a one-line error
    (exit 2) and writes nothing.
    """
    check_out(out)
    refuse_outputs_over_inputs({"--out": out, "--geojson": geojson}, inputs.files(), IMAGE_SUFFIXES)
    batch = geolocator.predict_many(inputs.items, top=top, batch_size=batch_size, truths=inputs.truths, names=inputs.names)
    batch = replace(batch, failures=[*inputs.skipped, *batch.failures])
    rows, failures, about = [r.to_dict(model=False) for r in batch.results], batch.failures, batch.model
    if not rows:
        _nothing_predicted(inputs, failures)
    _say_which_model(about)  # after the one-line error above: a failed photo says only what went wrong
    if out is not None:  # written first: a photo name that cannot be printed must not lose the batch
        _write(out, rows)
    if geojson is not None:
        from geolocate.inference.geojson import write_geojson

        write_geojson(geojson, rows, about)
    if as_json:
        emit(batch.to_dict(), as_json)  # `inference.result.document`: the one serializer
    _show(rows, failures, as_json, inputs)
    if out is not None:
        console.print(f"[green]✓[/] wrote {len(rows)} rows to {out}")
    if geojson is not None:
        console.print(f"[green]✓[/] wrote {geojson} (GeoJSON, {len(rows)} {inputs.noun})")
    return 1 if failures else 0


def _nothing_predicted(inputs: Inputs, failures: list[Failure]) -> None:
    if inputs.count == 1:
        raise UserError(failures[0].reason if failures else "nothing to predict")
    for f in failures:
        console.print(f"[red]error:[/] {inert(f.reason)}", soft_wrap=True)
    raise UserError(f"none of the {inputs.count} {inputs.noun} could be predicted ({len(failures)} failures above); nothing written")


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


def _show(rows: list[dict], failures: list[Failure], as_json: bool, inputs: Inputs) -> None:
    for f in failures:
        console.print(f"[red]error:[/] {inert(f.reason)}", soft_wrap=True)
    if as_json:
        return
    if len(rows) == 1 and not failures and inputs.count == 1:
        stdout.print(_row_table(rows[0]))
        return
    if rows:
        stdout.print(_photos_table(rows, inputs.shown, inputs.noun))
    stdout.print(summary_line(rows, failures, inputs.noun, inputs.count), soft_wrap=True)


def summary_line(rows: list[dict], failures: list[Failure], noun: str = "photos", total: int | None = None) -> str:
    """'12 photos, 1 failed; median error 3.41 km over 10 with known truth' (EXIF GPS, --lat/--lon or the table's).

    Four-view batches also count the unreadable views of locations still predicted from the others.
    """
    total = len(rows) + len(failures) if total is None else total
    line = f"{total} {noun}, {total - len(rows)} failed"
    if len(failures) > total - len(rows):
        line += f" ({len(failures) - (total - len(rows))} unreadable views)"
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


def _photos_table(rows: list[dict], names: dict[str, str], noun: str = "photos") -> Table:
    """One row per photo with its top-k (every --top class, one per line); long names fold, never cut."""
    from geolocate.cells.classes import cell_label  # here: the cells package brings polars, which one photo never needs

    table = Table(title=f"{len(rows)} {noun}", title_justify="left")
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
