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
    """Assign H3 cells, merge sparse ones into their parents, write cells.parquet and labels.parquet."""
    from geolocate.cells import run_cells

    data = inv.paths.data
    from geolocate.cells.recorded import given_keys

    from geolocate.config import profile_values

    result = run_cells(inv.cfg.cells, data, resolution=res, force=force, given=given_keys(inv.sets),
                       profile_fixed=profile_values(inv.cfg.profile, "cells"))
    console.print(_counts_line(result.counts), soft_wrap=True)
    if result.imported:
        console.print(result.imported, soft_wrap=True)
    if result.auto:
        console.print(f"auto classes: {result.auto.sentence()}; a class needs ≥ {result.min_samples} photos", soft_wrap=True)
    if result.merged:
        children = sum(len(m["children"]) for m in result.merged)
        console.print(f"merged {children} sparse cells into {len(result.merged)} parent cells (--json lists them)")
    if result.joined:
        console.print(f"{result.joined_photos} photos in {len(result.joined)} cells still sparse at resolution 0 "
                      "joined their nearest class")
    if result.dropped:
        console.print(f"[yellow]dropped[/] {len(result.dropped)} sparse cells ({result.dropped_photos} photos) "
                      f"below {result.min_samples} photos (cells.max_merge_levels = {inv.cfg.cells.max_merge_levels} "
                      "stops the climb before resolution 0)")
    console.print(_kpi_table(result.kpis, result.resolution))
    console.print(f"[green]✓[/] wrote {data.cells} and {data.labels}; appended {data.kpi_history}")
    inv.emit(result.summary())


def _counts_line(counts: dict) -> str:
    """'64 photos to label: the 46 in the manifest, 6 360° captures replaced by the 24 views `prepare` cut'."""
    line = f"{counts['photos']:,} photos to label"
    if counts["captures_cut"]:
        line += (f": the {counts['originals']:,} imported or fetched, {counts['captures_cut']:,} 360° captures "
                 f"replaced by the {counts['views']:,} views `prepare` cut from them")
    if counts["invalid_positions"]:
        line += f"; [yellow]skipped[/] {counts['invalid_positions']:,} without a valid position"
    return line


def _kpi_table(kpis: dict, resolution: int) -> Table:
    table = Table(title=f"cells at H3 resolution {resolution} (sparse cells merged into coarser parents)")
    for name in ("batches", "photos", "classes", "min_per_cell", "median_per_cell", "max_per_cell", "top_class_share"):
        table.add_column(name.replace("_", " "), justify="right")
    share = f"{kpis['top_class_share']:.1%}"
    table.add_row(kpis["batches"] or "-", *(f"{kpis[k]:,}" for k in ("photos", "classes", "min_per_cell")),
                  f"{kpis['median_per_cell']:g}", f"{kpis['max_per_cell']:,}", share)
    return table
