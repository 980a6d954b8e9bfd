"""The Typer app, the options every command shares, and the one-line error handling.

Command modules (`geolocate/cli/<stage>.py`) register with `@command()`; they parse options,
call one `run_<stage>` function of the library and print. Heavy libraries (torch, timm) are
imported inside the commands that need them, so `--help` and the data commands stay fast.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.markup import escape

from geolocate.config import GeolocateConfig, load_config
from geolocate.console import console, emit
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
_SHARED = {"config": (ConfigOpt, None), "profile": (ProfileOpt, None), "sets": (SetOpt, None), "as_json": (JsonOpt, False)}


def load(config: Optional[Path] = None, profile: Optional[str] = None,
         sets: Optional[list[str]] = None) -> tuple[GeolocateConfig, "ProjectPaths"]:
    """Resolve the configuration from the shared options, and the project's paths with it."""
    from geolocate.paths import ProjectPaths

    cfg = load_config(config, profile, sets or [])
    return cfg, ProjectPaths.from_config(cfg.paths)


@dataclass(frozen=True)
class Invocation:
    """What the shared options resolve to: the config, its paths, and whether to print JSON."""

    cfg: GeolocateConfig
    paths: Any  # ProjectPaths (imported lazily with the config's paths)
    as_json: bool

    def emit(self, result: Any, indent: int | None = 2) -> None:
        emit(result, self.as_json, indent)


def command(*args, **kwargs) -> Callable:
    """`app.command`, plus the shared options and the one-line error handling.

    A command that declares `inv: Invocation` gets `--config`, `--profile`, `--set` and `--json`
    after its own options, resolved once into `inv` (config, paths, output). A UserError prints
    one line and exits non-zero; Ctrl-C says how to resume.
    """

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)
        shared = "inv" in signature.parameters

        @functools.wraps(fn)
        def wrapper(**kw):
            try:
                if shared:
                    cfg, paths = load(kw.pop("config"), kw.pop("profile"), kw.pop("sets"))
                    kw["inv"] = Invocation(cfg, paths, kw.pop("as_json"))
                return fn(**kw)
            except UserError as exc:
                console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)  # plain text, never markup
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                console.print("[yellow]interrupted[/]: what was written is kept; run the same command again to resume")
                raise typer.Exit(130) from None

        params = [p for p in signature.parameters.values() if p.name != "inv"]
        if shared:
            params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
                       for name, (kind, default) in _SHARED.items()]
        wrapper.__signature__ = signature.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return app.command(*args, **kwargs)(wrapper)

    return decorate


def deprecated(old: str, new: str) -> None:
    """One line on stderr for an option spelling kept for one release."""
    console.print(f"[yellow]note:[/] {old} is deprecated and will be removed in the next release; use {new}")
