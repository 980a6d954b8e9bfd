"""`geolocate sanity`: check the data set before training; exit non-zero on any violation."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from geolocate.cli.app import ConfigOpt, JsonOpt, ProfileOpt, SetOpt, command, load
from geolocate.console import console
from geolocate.paths import ProjectPaths


@command("sanity")
def sanity_command(
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    quick: bool = typer.Option(False, "--quick", help="Only check that photos exist (do not decode them)."),
    as_json: JsonOpt = False,
) -> None:
    """Photos exist and decode, cells reach the minimum, no sequence leakage, dominance cap held."""
    from geolocate.split.sanity import run_sanity

    cfg = load(config, profile, sets)
    report = run_sanity(cfg, ProjectPaths.from_config(cfg.paths).data, quick=quick)
    table = Table(title="sanity")
    for column in ("check", "status", "detail"):
        table.add_column(column)
    for check in report.checks:
        table.add_row(check.name, "[green]PASS[/]" if check.ok else "[red]FAIL[/]", check.detail)
    console.print(table)
    if as_json:
        print(json.dumps({"ok": report.ok, "checks": [vars(c) for c in report.checks]}, indent=2))
    report.raise_for_violations()
    console.print("[green]✓[/] the data set is ready to train on")
