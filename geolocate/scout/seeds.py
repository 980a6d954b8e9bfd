"""`geolocate train --seeds N` for scout-sniper runs: mean ± std of every test metric across seeds.

One seed's score says little on a few dozen test locations; the spread across seeds says how
much of a difference between two settings is noise. Every phase (each scout, the ensemble,
ensemble + sniper) is aggregated with `evaluate.metrics.aggregate_seeds`, printed as a table on
stderr and written to `runs/seeds-<first run id>.json`.
"""

from __future__ import annotations

from geolocate.console import console
from geolocate.paths import ProjectPaths

SHOWN = ("acc_top1", "acc_top5", "median_km", "p90_km")  # the table's columns; the JSON keeps every metric


def seed_summary(runs: list) -> dict:
    """{runs, seeds, test: {phase: {metric: {mean, std}}}} over the runs that reached evaluation."""
    from geolocate.evaluate.metrics import aggregate_seeds

    scored = [r for r in runs if isinstance(r.metrics.get("test"), dict)]
    phases = [p for p in scored[0].metrics["test"] if all(p in r.metrics["test"] for r in scored)] if scored else []
    test = {phase: aggregate_seeds([r.metrics["test"][phase] for r in scored]) for phase in phases}
    return {"runs": [r.run_id for r in scored], "seeds": len(scored), "test": test}


def write_seed_summary(runs: list, paths: ProjectPaths) -> dict | None:
    """Aggregate, write `runs/seeds-<first run id>.json`, print the table; None when no run was evaluated."""
    from geolocate.train.run import save_seed_summary

    summary = seed_summary(runs)
    if not summary["runs"]:
        return None
    scored = [r for r in runs if r.run_id in summary["runs"]]
    path = save_seed_summary(summary, scored, paths, seed_table(summary))
    console.print(f"[green]✓[/] mean ± std over {summary['seeds']} seeds → {path}")
    return summary


def seed_table(summary: dict):
    """A rich table: one row per phase, `mean ± std` of the headline test metrics."""
    from rich.table import Table

    table = Table(title=f"test metrics, mean ± std over {summary['seeds']} seeds")
    table.add_column("phase")
    columns = [k for k in SHOWN if any(k in m for m in summary["test"].values())]
    for key in columns:
        table.add_column(key, justify="right")
    for phase, stats in summary["test"].items():
        table.add_row(phase, *(_cell(key, stats.get(key)) for key in columns))
    return table


def _cell(key: str, stat: dict | None) -> str:
    if stat is None:
        return "–"
    if key.startswith("acc_"):
        return f"{stat['mean']:.1%} ± {stat['std']:.1%}"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}"  # the column name carries the unit
