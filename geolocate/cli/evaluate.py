"""`geolocate evaluate`: measure a run on val and test, in km, with gates and artifacts."""

from __future__ import annotations

import typer

from geolocate.cli.app import Invocation, command
from geolocate.console import console


@command("evaluate")
def evaluate_command(
    inv: Invocation,
    run: str = typer.Option("latest", "--run", help="Run to evaluate: 'latest', a run id or a run directory."),
    strict: bool = typer.Option(False, "--strict", help="Exit with 1 when a gate fails (for scripts and CI)."),
) -> None:
    """Accuracy, median/p90 km, catastrophic errors, calibration and gates; writes REPORT.md and plots."""
    from geolocate.systems import evaluator

    report = evaluator(inv.paths, run)(inv.cfg, inv.paths, run)
    inv.emit(report)
    console.print(f"[green]✓[/] report: {report['report_path']}")
    if strict and not report["gates_pass"]:
        raise typer.Exit(1)
