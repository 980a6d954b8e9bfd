"""`geolocate demo`: the whole pipeline offline on synthetic photos, in a few minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

import typer

from geolocate.cli.app import JsonOpt, SetOpt, command, emit
from geolocate.cli.evaluate import print_evaluation
from geolocate.console import stdout


@command("demo")
def demo_command(
    workdir: Path = typer.Option(Path("demo-run"), "--workdir", help="Directory the demo works in (created)."),
    profile: str = typer.Option("tiny", "--profile", "-p", help="Profile to run (tiny is CPU-sized)."),
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """synth → prepare → cells → split → sanity → train → evaluate → predict, offline."""
    from geolocate.ops.demo import run_demo

    summary = run_demo(workdir, profile, sets)
    if as_json:
        emit(summary, as_json)
        return
    print_evaluation(summary["evaluation"], report=False)  # its path is inside --workdir: said below
    p = summary["prediction"]
    stdout.print(f"\npredicted {summary['predict_example']}: {p['lat']:.4f}, {p['lon']:.4f} "
                 f"(top-1 {p['top'][0]['city']}, confidence {p['confidence']:.0%}, error {p['error_km']:.2f} km)", soft_wrap=True)
    stdout.print(f"[bold green]demo done[/] in {summary['seconds']:.0f} s: report {workdir / summary['run_dir']}/REPORT.md", soft_wrap=True)
    stdout.print("predict any photo with the demo's model (from this directory):", soft_wrap=True)
    stdout.print(f"  geolocate predict {summary['predict_example']} --checkpoint {summary['model']} --top 5",
                 markup=False, soft_wrap=True)
