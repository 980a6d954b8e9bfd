"""`geolocate import`: your own geotagged photos (EXIF GPS, or a position CSV) into the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from geolocate.cli.app import Invocation, command
from geolocate.console import console, inert, stdout

SHOWN_SKIPS = 100  # a table of a million bad rows must not print a million lines


@command("import")
def import_command(
    inv: Invocation,
    paths: list[Path] = typer.Argument(..., help="Folders (searched recursively), photo files, or CSVs file,lat,lon[,heading,captured_at,sequence_id].", show_default=False),
    name: Optional[str] = typer.Option(None, "--name", help="Area name of these photos (default: local.name).", show_default=False),
    license: Optional[str] = typer.Option(None, "--license", help="Licence of photos whose EXIF has no Copyright, e.g. CC-BY-SA-4.0.", show_default=False),
    allow_outside: bool = typer.Option(False, "--allow-outside", help="Accept CSV rows naming your own files outside the CSV's folder (absolute or '..'); links and devices stay refused."),
) -> None:
    """Import geotagged photos; photos without a usable position are listed with the reason, never guessed.

    Importing the same photos again adds nothing (ids are content hashes). Then: prepare, cells, split, train.
    """
    from geolocate.acquire.local import run_import

    report = run_import(inv.cfg.local, inv.paths.data, paths, name=name, license=license, allow_outside=allow_outside)
    for path, reason in list(report.skipped.items())[:SHOWN_SKIPS]:
        console.print(f"[yellow]skipped[/] {inert(path)}: {inert(reason)}", soft_wrap=True, highlight=False)
    if len(report.skipped) > SHOWN_SKIPS:
        console.print(f"[yellow]skipped[/] {len(report.skipped) - SHOWN_SKIPS} more (the table below counts them, --json lists them)")
    if not inv.as_json:
        stdout.print(_counts_table(report))
    inv.emit(report.to_dict())
    console.print(f"{len(report.imported)} photos imported in {report.seconds:.1f} s ({report.sequences} sequences, "
                  f"{report.panos} 360° captures); next: `geolocate prepare`")


def _counts_table(report) -> Table:
    table = Table("photos", "count", title="import")
    for what, count in report.counts().items():
        table.add_row(inert(what), str(count))
    return table
