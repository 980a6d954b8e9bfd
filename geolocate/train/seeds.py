"""`geolocate train --seeds N` for both systems: N runs (seed, seed+1, …), then mean ± std of every
val and test metric across them.

One seed's score says little on a few dozen test examples; the spread across seeds says how much of
a difference between two settings is noise. A system's metrics are either one table per split
(France v1: `{"test": {metric: value}}`) or one per phase (scout-sniper: `{"test": {phase: {…}}}`);
both are aggregated with `evaluate.metrics.aggregate_seeds`, printed as a table on stderr and
written to `runs/seeds-<first run id>.json` and to the last run's `seeds.json` (what its report reads).
"""

from __future__ import annotations

from typing import Callable

from geolocate import atomic
from geolocate.console import console
from geolocate.paths import ProjectPaths

SHOWN = ("acc_top1", "acc_top5", "median_km", "p90_km")  # the table's columns; the JSON keeps every metric
SEEDS_FILE = "seeds.json"  # in the last run of a seeds batch


def train_seeds(cfg, n: int, train_one: Callable, paths: ProjectPaths, write: bool = True) -> list:
    """`train_one(cfg)` for seeds `train.seed`, +1, … (`n` runs); the summary when `n` > 1 and `write`."""
    runs = []
    for i in range(n):
        seeded = cfg.model_copy(deep=True)
        seeded.train.seed = cfg.train.seed + i
        runs.append(train_one(seeded))
    if n > 1 and write:
        write_seed_summary([r for r in runs if r is not None], paths)
    return runs


def seed_summary(runs: list) -> dict:
    """{runs, seeds, val, test} over the runs that reached evaluation; each split is {metric: {mean, std}}
    or, for metrics per phase, {phase: {metric: {mean, std}}}."""
    scored = [r for r in runs if isinstance(r.metrics.get("test"), dict)]
    summary = {"runs": [r.run_id for r in scored], "seeds": len(scored)}
    for split in ("val", "test"):
        tables = [r.metrics.get(split) for r in scored]
        if scored and all(isinstance(t, dict) for t in tables):
            summary[split] = _aggregate(tables)
    return summary


def _aggregate(tables: list[dict]) -> dict:
    from geolocate.evaluate.metrics import aggregate_seeds

    if not all(isinstance(v, dict) for v in tables[0].values()):
        return aggregate_seeds(tables)
    phases = [p for p in tables[0] if all(isinstance(t.get(p), dict) for t in tables)]
    return {phase: aggregate_seeds([t[phase] for t in tables]) for phase in phases}


def write_seed_summary(runs: list, paths: ProjectPaths) -> dict | None:
    """Aggregate, write the JSON files, print the table, add it to the last run's metrics; None when no run was evaluated."""
    from pathlib import Path

    summary = seed_summary(runs)
    if not summary["runs"]:
        return None
    scored = [r for r in runs if r.run_id in summary["runs"]]
    path = paths.runs / f"seeds-{scored[0].run_id}.json"
    atomic.write_json(path, summary)
    if Path(scored[-1].run_dir).is_dir():
        atomic.write_json(Path(scored[-1].run_dir) / SEEDS_FILE, summary)
    console.print(seed_table(summary))
    console.print(f"[green]✓[/] mean ± std over {summary['seeds']} seeds → {path}")
    scored[-1].metrics["seeds"] = summary
    return summary


def seed_table(summary: dict):
    """A rich table: one row per phase (or one `test` row), `mean ± std` of the headline test metrics."""
    from rich.table import Table

    test = summary.get("test") or {}
    rows = test if all(isinstance(v, dict) and "mean" not in v for v in test.values()) else {"test": test}
    table = Table(title=f"test metrics, mean ± std over {summary['seeds']} seeds")
    table.add_column("phase")
    columns = [k for k in SHOWN if any(k in m for m in rows.values())]
    for key in columns:
        table.add_column(key, justify="right")
    for phase, stats in rows.items():
        table.add_row(phase, *(_cell(key, stats.get(key)) for key in columns))
    return table


def _cell(key: str, stat: dict | None) -> str:
    if stat is None:
        return "–"
    if key.startswith("acc_"):
        return f"{stat['mean']:.1%} ± {stat['std']:.1%}"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}"  # the column name carries the unit
