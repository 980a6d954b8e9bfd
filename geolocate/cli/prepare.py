"""`geolocate prepare`: write the processed copy (longest side data.max_size) of every new photo."""

from __future__ import annotations

from rich.table import Table

from geolocate.cli.app import Invocation, command
from geolocate.console import console

_SHOW_FAILED = 10


@command("prepare")
def prepare_command(
    inv: Invocation,
) -> None:
    """Resize new photos into data/processed/ in parallel and record them in the manifest; re-runs skip done photos."""
    from geolocate.acquire.prepare import run_prepare

    cfg = inv.cfg
    data = inv.paths.data
    report = run_prepare(cfg.data, data)
    table = Table("photos", "processed", "already done", "failed", "workers", "seconds",
                  title=f"prepare: longest side {cfg.data.max_size} px, JPEG q{cfg.data.jpeg_quality}")
    table.add_row(*(f"{v:,}" for v in (report.photos, report.processed, report.already_done, len(report.failed), report.workers)),
                  f"{report.seconds:.1f}")
    console.print(table)
    if report.captures_cut:
        console.print(f"cut {report.captures_cut:,} 360° captures into {report.views_cut:,} views: from now on each view is a "
                      f"photo of its own and the capture is not labelled (`cells` counts {report.views_cut - report.captures_cut:+,} photos)",
                      soft_wrap=True)
    for image_id, reason in sorted(report.failed.items())[:_SHOW_FAILED]:
        console.print(f"[yellow]failed[/] {image_id}: {reason}", soft_wrap=True)
    if len(report.failed) > _SHOW_FAILED:
        console.print(f"… and {len(report.failed) - _SHOW_FAILED} more (--json lists them all)")
    if report.failed:
        console.print("[yellow]failed photos are kept out of processed/[/]: re-fetch them, then run prepare again")
    inv.emit(report.to_dict())
