"""`geolocate evaluate`: measure a run on val and test, in km, with gates and artifacts."""

from __future__ import annotations

import typer

from geolocate.cli.app import Invocation, command
from geolocate.console import stdout


@command("evaluate")
def evaluate_command(
    inv: Invocation,
    run: str = typer.Option("latest", "--run", help="Run to evaluate: 'latest', a run id or a run directory."),
    strict: bool = typer.Option(False, "--strict", help="Exit with 1 when a gate fails (for scripts and CI)."),
) -> None:
    """Accuracy, median/p90 km, catastrophic errors, calibration and gates; writes REPORT.md and plots.

    A run is judged by its own saved config (model, evaluation settings, gates); --profile, --config or --set judge it by those instead, and the report says so at the top.
    """
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.evaluate.judge import judging_config
    from geolocate.systems import evaluator

    cfg = judging_config(inv.cfg, resolve_run(run, inv.paths), asked=inv.overridden)
    report = evaluator(inv.paths, run)(cfg, inv.paths, run)
    if inv.as_json:
        inv.emit(report)
    else:
        print_evaluation(report)
    if strict and not report["gates_pass"]:
        raise typer.Exit(1)


def print_evaluation(summary: dict, report: bool = True) -> None:
    """The test figures, the warnings, the gates table, the promotion and (unless `report` is off) the report's path.

    Both systems' summaries have one shape (`evaluate.finish`): the final test metrics, then what differs.
    """
    from geolocate.evaluate.gates import gates_table
    from geolocate.evaluate.tables import baselines_line

    t = summary["metrics"]["test"]
    judged = summary.get("judged_with") or {}
    if judged and not judged.get("own"):
        stdout.print(f"[yellow]judged with profile {judged.get('profile')}[/], not the run's own ({judged.get('run_profile')})")
    if "median_km" in t:
        stdout.print(f"test: top-1 {t['acc_top1']:.1%}, top-5 {t.get('acc_top5', float('nan')):.1%}, "
                     f"median {t['median_km']:.2f} km, p90 {t['p90_km']:.2f} km, >200 km {t['over_200km']:.1%}")
        if summary.get("baselines"):
            stdout.print(baselines_line(t, summary["baselines"]), soft_wrap=True)
    for warning in (summary.get("small_sample"), summary.get("collapse")):
        if warning:
            stdout.print(f"[yellow]![/] {warning}", soft_wrap=True)
    if summary.get("gates") and isinstance(summary["gates"], list):
        stdout.print(gates_table(summary["gates"]))
    _print_promotion(summary)
    if report:
        stdout.print(f"report: {summary['report_path']}", soft_wrap=True)


def _print_promotion(summary: dict) -> None:
    why = (summary.get("promotion") or {}).get("why")
    if summary.get("became_best"):
        stdout.print(f"[green]★[/] this run {why or 'is the new global best (models/best.*)'}", soft_wrap=True)
    elif summary.get("already_best"):
        stdout.print("[green]★[/] this run is the default model already", soft_wrap=True)
    elif why:
        stdout.print(f"[yellow]![/] this run {why}", soft_wrap=True)
