"""`geolocate batch`, `geolocate clean-raw`, `geolocate kpi`: running the project batch by batch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from geolocate.cli.app import Invocation, command, deprecated
from geolocate.console import console, stdout
from geolocate.errors import UserError


@command("batch")
def batch_command(
    inv: Invocation,
    batch: Optional[str] = typer.Option(None, "--batch", help="Catalog batch to add, e.g. 03.", show_default=False),
    old_batch: Optional[str] = typer.Argument(None, metavar="[BATCH]", help="Deprecated: the batch as a positional argument; use --batch.", show_default=False),
    synthetic: bool = typer.Option(False, "--synthetic", help="Offline: synthetic photos of the batch's cities (synth.n_photos per batch) instead of fetching."),
    clean_raw: bool = typer.Option(False, "--clean-raw", help="Delete the raw downloads at the end (processed copies stay)."),
) -> None:
    """fetch → prepare → cells → split → sanity → train → evaluate → export [→ clean-raw]; re-run to resume.

    A four-view profile (scout-sniper) runs fetch → prepare → locations → regions → train (every phase,
    then evaluate) [→ clean-raw].
    """
    from geolocate.evaluate.gates import gates_table
    from geolocate.ops.batch import Plan, run_batch

    cfg = inv.cfg
    batch = _batch_option(batch, old_batch)
    result = run_batch(Plan(cfg, inv.paths, batch, synthetic, clean_raw))
    out = console if inv.as_json else stdout  # the tables are the result, unless --json is
    if result.kpi_history is not None:
        out.print(kpi_table(result.kpi_history, cfg.cells.max_dominance))
    if result.gates:
        out.print(gates_table(result.gates, f"gates of run {result.run_id}"))
    ran = sum(s["status"] == "ran" for s in result.steps)
    out.print(f"[bold green]batch {result.batch} done[/]: {ran} steps ran, {len(result.steps) - ran} skipped"
              + (f"; export {result.export}" if result.export else "") + (f"; KPI figure {result.kpi_figure}" if result.kpi_figure else ""))
    inv.emit(result.to_dict())


def _batch_option(batch: Optional[str], old_batch: Optional[str]) -> str:
    if old_batch is not None:
        deprecated("geolocate batch NN", "geolocate batch --batch NN")
        if batch is not None and batch != old_batch:
            raise UserError(f"two batches given ({old_batch} and --batch {batch}); give one, with --batch")
    if (batch or old_batch) is None:
        raise UserError("say which catalog batch to add: geolocate batch --batch 03")
    return batch or old_batch


@command("clean-raw")
def clean_raw_command(
    inv: Invocation,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted; delete nothing."),
    force: bool = typer.Option(False, "--force", help="Also delete raw photos that have no processed copy."),
) -> None:
    """Delete the raw downloads under data/raw/ whose processed copy exists (fetch restores them by id)."""
    from geolocate.ops.clean_raw import run_clean_raw

    report = run_clean_raw(inv.paths.data, dry_run=dry_run, force=force)
    inv.emit(report.to_dict())
    if dry_run:
        for path in report.files:
            console.print(f"would delete {path}", highlight=False)
        if report.blocked:
            console.print(f"[yellow]kept[/] {len(report.blocked)} raw photos without a processed copy (run `geolocate prepare` first)")
    if report.forced:
        console.print(f"[yellow]forced[/]: {len(report.forced)} raw photos had no processed copy")
    verb = "would free" if dry_run else "freed"
    console.print(f"[green]✓[/] {verb} {len(report.files)} files, {report.bytes / 1e6:.1f} MB"
                  + ("" if dry_run else f"; {report.manifest_rows} manifest rows now have no raw path"))


@command("kpi")
def kpi_command(
    inv: Invocation,
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write the figure (default: data/kpi_history.png).", show_default=False),
) -> None:
    """The data-set KPI history across batches, as a table and kpi_history.png."""
    from geolocate.ops.kpi import MIN_FIGURE_ROWS, run_kpi

    cfg = inv.cfg
    report = run_kpi(inv.paths.data, cfg.cells.max_dominance, out=out)
    if inv.as_json:
        inv.emit(report.to_dict())
    else:
        stdout.print(kpi_table(report.history, cfg.cells.max_dominance))
    console.print(f"[green]✓[/] wrote {report.figure}" if report.figure else
                  f"no figure until the history has {MIN_FIGURE_ROWS} rows (it has {report.history.height}): the table is the history")


def kpi_table(history, limit: float) -> Table:
    """One row per `geolocate cells` run: batches, photos, classes, per-cell spread, top share."""
    table = Table(title="KPI history")
    for name in ("when", "batches", "photos", "classes", "min / median / max per cell", "top class"):
        table.add_column(name, justify="left" if name in ("when", "batches") else "right")
    for row in history.iter_rows(named=True):
        share = row["top_class_share"]
        colour = "red" if share > limit else "green"
        table.add_row(f"{row['timestamp']:%Y-%m-%d %H:%M}", row["batches"] or "-", f"{row['photos']:,}", f"{row['classes']:,}",
                      f"{row['min_per_cell']:,} / {row['median_per_cell']:g} / {row['max_per_cell']:,}", f"[{colour}]{share:.1%}[/]")
    return table
