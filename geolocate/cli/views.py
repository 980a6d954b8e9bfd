"""`geolocate locations`, `import-locations`, `regions`: the scout-sniper's multi-view data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from geolocate.cli.app import Invocation, command
from geolocate.console import console


@command("locations")
def locations_command(inv: Invocation) -> None:
    """Group manifest photos into four-view locations (views.radius_m, views.tolerance_deg) → data/locations.parquet."""
    from geolocate.scout.locations import run_locations, view_counts

    data = inv.paths.data
    table = run_locations(inv.cfg, data)
    summary = {"locations": table.height, **view_counts(table), "file": str(data.locations)}
    inv.emit(summary, indent=None)  # one line: scripts read the last line
    console.print(f"[green]✓[/] {table.height} locations → {data.locations} ({', '.join(f'{k}: {v}' for k, v in view_counts(table).items())})")


@command("import-locations")
def import_locations_command(
    inv: Invocation,
    table: Path = typer.Argument(..., help="CSV with one row per location: id, north, east, south, west [, lat, lon, region]."),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Base directory of the view paths (default: the CSV's)."),
) -> None:
    """Import a locations table (competition layout); unreadable views are reported, not fatal."""
    from geolocate.acquire.locations_table import import_locations

    data = inv.paths.data
    result = import_locations(table, images_dir, data, inv.cfg.regions.column)
    inv.emit(result.__dict__, indent=None)
    for bad in result.unreadable:
        console.print(f"[yellow]unreadable[/] {bad['location_id']} {bad['view']}: {bad['reason']}", soft_wrap=True)
    console.print(f"[green]✓[/] {result.locations} locations, {result.views} views imported "
                  f"({len(result.unreadable)} unreadable); next: `geolocate prepare`, then `geolocate regions`")


@command("regions")
def regions_command(inv: Invocation) -> None:
    """Label locations with regions, split them without leakage, centroids from train → data/regions.parquet."""
    from geolocate.cells.recorded import given_keys
    from geolocate.scout.regions import run_regions

    data = inv.paths.data
    report = run_regions(inv.cfg, data, given_keys(inv.sets)).report
    inv.emit(report, indent=None)
    if report["note"]:
        console.print(report["note"], soft_wrap=True)
    console.print(_regions_table(report))
    n = report["locations"]
    console.print(f"[green]✓[/] {report['regions']} regions; locations train {n['train']} / val {n['val']} / test {n['test']} "
                  f"→ {data.regions}")


def _regions_table(report: dict) -> Table:
    n, near = report["locations"], report["leakage"]["near_duplicates"]
    where = f"H3 cells from resolution {report['h3_resolution']}" if report["source"] == "h3" else "the table's column"
    table = Table(title="regions", show_header=False)
    table.add_row("regions", f"{report['regions']} ({where}, ≥ {report['min_samples']} locations each)")
    table.add_row("locations", f"{report['located']:,} located: train {n['train']:,} / val {n['val']:,} / test {n['test']:,}")
    if report["dropped_sparse"]:
        table.add_row("sparse regions dropped", f"{report['dropped_sparse']:,}")
    if report["buffer_dropped"]:
        table.add_row("spatial buffer", f"{report['buffer_dropped']:,} train locations within {near['near_m']:g} m of val/test left out")
    table.add_row("sequences shared", f"{report['leakage']['sequences_shared']}")
    table.add_row(f"test locations with a train one < {near['near_m']:g} m",
                  f"{near['with_train_neighbour']:,} of {near['test_photos']:,} ({near['share']:.1%})")
    return table
