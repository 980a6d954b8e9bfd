"""`geolocate evaluate`: measure a run on val and test, in km, with gates and artifacts."""

from __future__ import annotations

import json

import typer

from geolocate.cli.app import ConfigOpt, JsonOpt, ProfileOpt, SetOpt, command, load
from geolocate.console import console
from geolocate.paths import ProjectPaths


@command("evaluate")
def evaluate_command(
    run: str = typer.Option("latest", "--run", help="Run to evaluate: 'latest', a run id or a run directory."),
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    strict: bool = typer.Option(False, "--strict", help="Exit with 1 when a gate fails (for scripts and CI)."),
    as_json: JsonOpt = False,
) -> None:
    """Accuracy, median/p90 km, catastrophic errors, calibration and gates; writes REPORT.md and plots."""
    cfg = load(config, profile, sets)
    paths = ProjectPaths.from_config(cfg.paths)
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.systems import evaluator

    report = evaluator(resolve_run(run, paths).root)(cfg, paths, run)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    console.print(f"[green]✓[/] report: {report['report_path']}")
    if strict and not report["gates_pass"]:
        raise typer.Exit(1)
