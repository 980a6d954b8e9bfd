"""`geolocate sanity`: check the data set before training; exit non-zero on any violation."""

from __future__ import annotations

import typer
from rich.table import Table

from geolocate.cli.app import Invocation, command
from geolocate.console import console


@command("sanity")
def sanity_command(
    inv: Invocation,
    quick: bool = typer.Option(False, "--quick", help="Only check that photos exist (do not decode them)."),
) -> None:
    """Photos exist and decode, cells reach the minimum, no sequence leakage, dominance cap held."""
    from geolocate.cells.recorded import given_keys
    from geolocate.split.sanity import run_sanity

    report = run_sanity(inv.cfg, inv.paths.data, quick=quick, given=given_keys(inv.sets))
    table = Table(title="sanity")
    for column in ("check", "status", "detail"):
        table.add_column(column)
    for check in report.checks:
        table.add_row(check.name, "[green]PASS[/]" if check.ok else "[red]FAIL[/]", check.detail)
    console.print(table)
    inv.emit({"ok": report.ok, "checks": [vars(c) for c in report.checks]})
    report.raise_for_violations()
    console.print("[green]✓[/] the data set is ready to train on")
