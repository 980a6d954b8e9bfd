"""`geolocate split`: grouped, cell-stratified train/val/test split with a leakage audit."""

from __future__ import annotations

from rich.table import Table

from geolocate.cli.app import Invocation, command
from geolocate.console import console


@command("split")
def split_command(inv: Invocation) -> None:
    """Split photos by sequence (or drive) and cell, cap the dominant class, audit leakage.

    Train rows left out by the dominance cap are not listed in split.parquet.
    """
    from geolocate.cells.recorded import given_keys
    from geolocate.split import run_split

    data = inv.paths.data
    report = run_split(inv.cfg, data, given_keys(inv.sets)).report
    if report["cells_dropped"]:
        console.print(f"[yellow]dropped[/] {len(report['cells_dropped'])} cells without a train photo: {', '.join(report['cells_dropped'])}")
    dominance = report["dominance"]
    if not dominance["attainable"]:
        console.print(f"[bold yellow]warning:[/] the {dominance['cap']:.0%} dominance cap is unattainable with "
                      f"{report['cells']} classes (it needs at least {1 / dominance['cap']:.0f}); train is not downsampled")
    console.print(_table(report))
    console.print(_counts_line(report), soft_wrap=True)
    left_out, trained = dominance["downsampled_rows"], report["photos"]["train"]
    if left_out > trained:  # few classes of uneven sizes: the cap would starve train
        console.print(f"[bold yellow]warning:[/] the {dominance['cap']:.0%} dominance cap left out {left_out:,} train photos "
                      f"and kept {trained:,} ({report['cells']} classes); with so few classes raise it, "
                      "e.g. --set cells.max_dominance=0.6", soft_wrap=True)
    console.print(f"[green]✓[/] wrote {data.split} and {data.split_report}")
    inv.emit(report)


def _table(report: dict) -> Table:
    leak, dom = report["leakage"], report["dominance"]
    near = leak["near_duplicates"]
    table = Table(title=f"split by {report['group_by']} (seed {report['seed']})", show_header=False)
    table.add_row("photos", " / ".join(f"{s} {report['photos'][s]:,}" for s in ("train", "val", "test")))
    table.add_row("groups", " / ".join(f"{s} {report['groups'][s]:,}" for s in ("train", "val", "test")))
    table.add_row("cells", f"{report['cells']} ({report['cells_without_val']} without val, {report['cells_without_test']} without test)")
    table.add_row("largest class", f"{dom['largest_share_before']:.1%} → {dom['largest_share_after']:.1%} of train "
                  f"(cap {dom['cap']:.0%}, {dom['downsampled_rows']:,} train rows left out)")
    if report.get("buffer_dropped"):
        table.add_row("spatial buffer", f"{report['buffer_dropped']:,} train photos within {near['near_m']:g} m of val/test left out")
    table.add_row("sequences shared", f"[{'green' if leak['sequences_shared'] == 0 else 'red'}]{leak['sequences_shared']}[/]")
    table.add_row("drives shared", f"{leak['drives_shared']:,}")
    table.add_row(f"test photos with a train photo < {near['near_m']:g} m",
                  f"{near['with_train_neighbour']:,} of {near['test_photos']:,} ({near['share']:.1%})")
    return table


def _counts_line(report: dict) -> str:
    """'64 labelled photos, 26 in the split: 38 train photos left out under the dominance cap'."""
    from geolocate.split.run import left_out

    kept = sum(report["photos"].values())
    line = f"{report['labelled']:,} labelled photos, {kept:,} in the split"
    said = left_out(report)
    return line + (": " + "; ".join(said) if said else " (all of them)")
