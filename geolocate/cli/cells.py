"""`geolocate cells`: label every photo with its H3 class cell and record the data-set KPIs."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from geolocate.cli.app import Invocation, command, default_of
from geolocate.console import console


@command("cells")
def cells_command(
    inv: Invocation,
    res: Optional[int] = typer.Option(None, "--res", help=f"H3 resolution ({default_of('cells.resolution')}).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Allow resolution ≥ 8 below cells.res8_min_images photos."),
) -> None:
    """Assign H3 cells, merge or drop sparse ones, write cells.parquet and labels.parquet."""
    from geolocate.cells import run_cells

    cfg = inv.cfg
    data = inv.paths.data
    result = run_cells(cfg.cells, data, resolution=res, force=force)
    if result.merged:
        children = sum(len(m["children"]) for m in result.merged)
        console.print(f"merged {children} sparse cells into {len(result.merged)} parent cells (--json lists them)")
    if result.dropped:
        console.print(f"[yellow]dropped[/] {len(result.dropped)} sparse cells ({result.dropped_photos} photos) below {cfg.cells.min_samples} photos")
    if result.invalid_positions:
        console.print(f"[yellow]skipped[/] {result.invalid_positions} photos without a valid position")
    console.print(_kpi_table(result.kpis, result.resolution))
    console.print(f"[green]✓[/] wrote {data.cells} and {data.labels}; appended {data.kpi_history}")
    inv.emit(result.summary())


def _kpi_table(kpis: dict, resolution: int) -> Table:
    table = Table(title=f"cells at H3 resolution {resolution}")
    for name in ("batches", "photos", "classes", "min_per_cell", "median_per_cell", "max_per_cell", "top_class_share"):
        table.add_column(name.replace("_", " "), justify="right")
    share = f"{kpis['top_class_share']:.1%}"
    table.add_row(kpis["batches"] or "-", *(f"{kpis[k]:,}" for k in ("photos", "classes", "min_per_cell")),
                  f"{kpis['median_per_cell']:g}", f"{kpis['max_per_cell']:,}", share)
    return table
