"""`geolocate export`, `freeze` and `export-model`: ship the project state, a gated release, an ONNX graph."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geolocate.cli.app import Invocation, command
from geolocate.console import console
from geolocate.errors import UserError


@command("export")
def export_command(
    inv: Invocation,
    with_images: bool = typer.Option(False, "--with-images", help="Include the processed photos (large)."),
    verify: Optional[Path] = typer.Option(None, "--verify", help="Check an export archive's hashes instead of writing one.", show_default=False),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="With --verify: the archive's SHA-256 as export printed it (or RELEASE.json records).", show_default=False),
) -> None:
    """Snapshot data tables, config, best model and latest run into exports/snapshot-<time>.tar.gz."""
    if verify is not None:
        from geolocate.artifacts.verify import verify_export

        problems = verify_export(verify, sha256)
        inv.emit({"file": str(verify), "ok": not problems, "problems": problems})
        _print_problems(verify, problems, sha256 is not None)
        raise typer.Exit(1 if problems else 0)
    if sha256 is not None:
        raise UserError("--sha256 goes with --verify FILE: it is the digest the archive is checked against")
    from geolocate.artifacts.export import run_export

    result = run_export(inv.cfg, inv.paths, with_images=with_images)
    inv.emit({"file": str(result.path), "sha256": result.sha256, "members": result.members, "skipped": result.skipped})
    for item in result.skipped:
        console.print(f"[yellow]skipped[/] {item['name']} ({item['reason']})")
    console.print(f"[green]✓[/] {result.path}: {len(result.members)} files, {result.total_bytes / 1e6:.1f} MB before compression")
    console.print(f"sha256 {result.sha256}  (keep it: `geolocate export --verify FILE --sha256 HEX` checks the archive against it)")


def _print_problems(file: Path, problems: list[str], anchored: bool) -> None:
    """One line for one problem (the common case), else the list and a count."""
    if len(problems) == 1:
        console.print(f"[red]✗[/] {problems[0]}", soft_wrap=True)
        return
    for problem in problems:
        console.print(f"[red]✗[/] {problem}", soft_wrap=True)
    anchor = " and the archive matches --sha256" if anchored else " (add --sha256 HEX to check the archive itself)"
    console.print(f"[red]{file}: {len(problems)} problems[/]" if problems else f"[green]✓[/] {file}: every member verified{anchor}")


@command("freeze")
def freeze_command(
    inv: Invocation,
    tag: str = typer.Option(..., "--tag", help="Release name, e.g. v1.0 (becomes releases/<tag>/ and a git tag)."),
    run: str = typer.Option("latest", "--run", help="Run to freeze: 'latest', a run id or a run directory."),
    force: bool = typer.Option(False, "--force", help="Freeze even if gates failed (recorded in RELEASE.json)."),
    tag_git: bool = typer.Option(True, "--tag-git/--no-tag", help="Also create an annotated git tag <tag> at HEAD of the git "
                                 "repository that holds the working directory (usually this project's own; never pushed)."),
) -> None:
    """Freeze a run whose gates all PASS into releases/<tag>/, with a snapshot export and a git tag.

    The git tag goes on HEAD of the git repository containing the current directory (from a clone of geolocate, geolocate's own repository); --no-tag skips it.
    """
    from geolocate.artifacts.freeze import run_freeze
    from geolocate.systems import release_model

    result = run_freeze(inv.cfg, inv.paths, run, tag, force=force, model=release_model(inv.paths, run), git_tag=tag_git)
    inv.emit({"release": str(result.release), "tag": result.tag, "run_id": result.run_id, "forced": result.forced,
              "failing_gates": result.failing_gates, "export": str(result.export), "export_sha256": result.export_sha256,
              "git": result.git.status})
    if result.forced:
        console.print(f"[yellow]forced[/]: gates failing ({', '.join(result.failing_gates)}), recorded in RELEASE.json")
    console.print(f"[green]✓[/] {result.release}: run {result.run_id}, {len(result.files)} files; export {result.export}")
    console.print(f"export sha256 {result.export_sha256} (in RELEASE.json and the git tag's annotation)")
    console.print(f"git tag: {result.git.detail}", style="green" if result.git.status == "created" else "yellow")


@command("export-model")
def export_model_command(
    inv: Invocation,
    run: str = typer.Option("latest", "--run", help="Run whose best checkpoint to export: 'latest', a run id or a run directory."),
) -> None:
    """Export a run's best model to ONNX (<run>/best.onnx), checked against torch; predict then runs without torch."""
    from geolocate.artifacts.onnx_export import export_onnx
    from geolocate.artifacts.rundir import resolve_run

    best = resolve_run(run, inv.paths).best
    record = export_onnx(best)
    inv.emit(record)
    parity = record["parity"]
    console.print(f"[green]✓[/] {best}.onnx: {record['bytes'] / 1e6:.1f} MB, max |Δlogit| {parity['max_abs_logit_diff']:.1e}, "
                  f"top-{parity['topk']} identical on {parity['batch']} images")
