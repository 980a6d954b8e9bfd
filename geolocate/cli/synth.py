"""`geolocate synth`: draw the synthetic street-level data set (offline demo and tests)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from geolocate.cli.app import Invocation, command, default_of
from geolocate.console import console


@command("synth")
def synth_command(
    inv: Invocation,
    n: Optional[int] = typer.Option(None, "--n", min=10, help=f"Photos to draw ({default_of('synth.n_photos')}).", show_default=False),
    size: Optional[int] = typer.Option(None, "--size", help=f"Side of each photo in pixels ({default_of('synth.size')}).", show_default=False),
    seed: Optional[int] = typer.Option(None, "--seed", help=f"Seed; the same seed gives the same files ({default_of('synth.seed')}).", show_default=False),
    batch: Optional[list[str]] = typer.Option(None, "--batch", help=f"Catalog batch whose cities to use; repeatable ({default_of('synth.batches')}).", show_default=False),
    multiview: Optional[bool] = typer.Option(None, "--multiview/--single-view", help=f"Four cardinal views per location ({default_of('synth.multiview')}).", show_default=False),
) -> None:
    """Generate synthetic street photos in catalog cities and add them to the manifest (source = synthetic)."""
    from geolocate.synth.generate import resolve_settings, run_synth

    settings = resolve_settings(inv.cfg.synth, n_photos=n, size=size, seed=seed, batches=batch, multiview=multiview)
    data = inv.paths.data
    report = run_synth(settings, data, catalog=inv.cfg.fetch.catalog)
    console.print(_summary_table(report))
    console.print(f"{report.drives} drives, {report.sequences} sequences, {report.locations} locations, "
                  f"{report.creators} creators; {report.photos_per_minute:,.0f} photos/min")
    if report.removed:
        console.print(f"replaced an earlier synthetic set: removed {report.removed} rows it no longer contains")
    console.print(f"[green]✓[/] wrote {report.photos} photos under {data.raw} and {data.manifest}; next: geolocate prepare")
    inv.emit(report.to_dict())


def _summary_table(report) -> Table:
    title = f"synth: {report.photos} photos, {report.size} px, seed {report.seed}" + (", four views" if report.multiview else "")
    table = Table("city", "photos", title=title)
    for city, count in report.cities.items():
        table.add_row(city, f"{count:,}")
    return table
