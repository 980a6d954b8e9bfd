"""`geolocate init`: make a directory a project, with its own config.toml and .gitignore."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from geolocate.cli.app import ProfileOpt, SetOpt, command
from geolocate.console import stdout


@command("init")
def init_command(
    directory: Path = typer.Argument(Path("."), metavar="DIR", help="The project directory (created when missing; default: here).", show_default=False),
    profile: ProfileOpt = None,
    sets: SetOpt = None,
) -> None:
    """Write DIR/config.toml (every key, described, at the profile's and --set values) and a .gitignore.

    Every command run inside DIR then reads that file: the directory is the project.
    """
    from geolocate.ops.project import init_project

    result = init_project(directory, profile, sets or [])
    where = [f"profile {profile}"] if profile else ["geolocate's defaults"]
    where += [f"--set {key}" for key, mark in result.changed.items() if mark == "--set"]
    stdout.print(f"[green]✓[/] wrote {escape(str(result.config))} ({escape(', '.join(where))}); "
                 "change a key with: geolocate config set KEY VALUE", soft_wrap=True)
    kept = f"added {' '.join(result.ignored)}" if result.ignored else "already ignores them"
    stdout.print(f"[green]✓[/] {escape(str(result.gitignore))}: {escape(kept)} (releases/ is kept: a release is what you ship)", soft_wrap=True)
    stdout.print(f"next: cd {escape(str(directory))} && geolocate import PHOTOS  (then prepare, cells, split, sanity, train, evaluate)",
                 soft_wrap=True)
