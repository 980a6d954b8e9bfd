"""The Typer app, the options every command shares, and the one-line error handling.

Command modules (`geolocate/cli/<stage>.py`) register with `@command()`; they parse options,
call one `run_<stage>` function of the library and print. Heavy libraries (torch, timm) are
imported inside the commands that need them, so `--help` and the data commands stay fast.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from geolocate.config import GeolocateConfig, load_config
from geolocate.console import console
from geolocate.errors import UserError

app = typer.Typer(
    name="geolocate",
    help="Learn where a street-level photo was taken: fetch → prepare → cells → split → train → evaluate → predict → freeze.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Config file (default: ./config.toml, else the packaged defaults).", show_default=False),
]
ProfileOpt = Annotated[
    Optional[str], typer.Option("--profile", "-p", help="Profile merged over the base tables: v1, scout-sniper, tiny…", show_default=False)
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a key, e.g. --set train.epochs=3 (TOML value, else a string). Repeatable.", show_default=False),
]


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Learn where a street-level photo was taken. Every command takes --config, --profile and --set."""
    if version:
        from geolocate import __version__

        print(__version__)
        raise typer.Exit()


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def load(config: Optional[Path], profile: Optional[str], sets: Optional[list[str]]) -> GeolocateConfig:
    """Resolve the configuration from the shared options."""
    return load_config(config, profile, sets or [])


def command(*args, **kwargs) -> Callable:
    """`app.command`, plus: a UserError prints one line and exits non-zero; Ctrl-C says how to resume."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            try:
                return fn(*a, **kw)
            except UserError as exc:
                console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                console.print("[yellow]interrupted[/]: what was written is kept; run the same command again to resume")
                raise typer.Exit(130) from None

        return app.command(*args, **kwargs)(wrapper)

    return decorate
