"""The Typer app, the options every command shares, and the one-line error handling.

Command modules (`geolocate/cli/<stage>.py`) register with `@command()`; they parse options,
call one `run_<stage>` function of the library and print. Heavy libraries (torch, timm) are
imported inside the commands that need them, so `--help` and the data commands stay fast.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional

import typer
from rich.markup import escape
from typer.core import TyperGroup, TyperOption

from geolocate.errors import Interrupted, UserError

if TYPE_CHECKING:  # the config's pydantic tree loads when a command runs, not for --help
    from geolocate.config import GeolocateConfig

_LAZY: dict[str, tuple[str, str]] = {}  # command name: (module under geolocate.cli, summary)


class LazyGroup(TyperGroup):
    """The root group: lists commands from their summaries, imports a command's module only to run it.

    `get_command` answers --help's listing with a summary stub; `resolve_command` (the way to a
    command that runs, or shows its own --help) imports the module and builds the real command.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (_, summary) in _LAZY.items():
            self.commands.setdefault(name, typer.core.TyperCommand(name, help=summary))
        self._real: set[str] = {name for name in self.commands if name not in _LAZY}

    def list_commands(self, ctx) -> list[str]:
        return [*_LAZY, *(n for n in self.commands if n not in _LAZY)]

    def resolve_command(self, ctx, args: list[str]):
        if args and args[0] in _LAZY:
            self.load_command(args[0])
        return super().resolve_command(ctx, args)

    def load_command(self, name: str):
        """The real click command `name`: its module imported, its `@command()` built by Typer."""
        if name not in self._real:
            importlib.import_module(f"geolocate.cli.{_LAZY[name][0]}")
            info = next(i for i in app.registered_commands if i.name == name)
            self.commands[name] = typer.main.get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode)
            self._real.add(name)
        return self.commands[name]


def register_lazy(commands: dict[str, tuple[str, str]]) -> None:
    """Declare the commands the root group lists before their modules are imported."""
    _LAZY.update(commands)


app = typer.Typer(
    name="geolocate",
    cls=LazyGroup,
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


def _print_version(value: bool) -> None:
    # Eager, so `geolocate --version` answers before click asks for a command.
    if value:
        from geolocate import __version__

        print(f"geolocate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)] = False,
) -> None:
    """Learn where a street-level photo was taken. Every command takes --config, --profile and --set."""


def _flag_type(self: TyperOption, ctx) -> str | None:
    # Typer labels on/off flags `<bool>` as if they took a value; a flag takes none, so show nothing.
    return None if self.is_flag else _typer_option_type(self, ctx)


_typer_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type


# `config.packaged_config_path()` without importing config (and pydantic) for a --help; a test checks they agree.
PACKAGED_TOML = Path(__file__).resolve().parents[1] / "defaults" / "config.toml"


@functools.cache
def _packaged_toml() -> dict:
    import tomllib

    return tomllib.loads(PACKAGED_TOML.read_text(encoding="utf-8"))


def _packaged_default(key: str) -> object:
    """A key's packaged default: from the packaged TOML when it sets the key (no pydantic), else the field's default."""
    value: object = _packaged_toml()
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            from geolocate.config import load_config, packaged_config_path

            value = load_config(packaged_config_path())
            for attr in key.split("."):
                value = getattr(value, attr)
            return value
        value = value[part]
    return value


def default_of(key: str) -> str:
    """`--help` text for an option whose default is a config key: its packaged value and the key."""
    value = _packaged_default(key)
    shown = ", ".join(map(str, value)) if isinstance(value, list) else value
    return f"default: {shown}, from {key}"


def emit(result: Any, as_json: bool, indent: int | None = 2) -> None:
    """`console.emit`, imported when a command prints (`--help` does not load the console)."""
    from geolocate.console import emit as emit_on_console

    emit_on_console(result, as_json, indent)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
_SHARED = {"config": (ConfigOpt, None), "profile": (ProfileOpt, None), "sets": (SetOpt, None), "as_json": (JsonOpt, False)}


def load(config: Optional[Path] = None, profile: Optional[str] = None,
         sets: Optional[list[str]] = None) -> tuple[GeolocateConfig, "ProjectPaths"]:
    """Resolve the configuration from the shared options, and the project's paths with it."""
    from geolocate.config import load_config
    from geolocate.paths import ProjectPaths

    cfg = load_config(config, profile, sets or [])
    return cfg, ProjectPaths.from_config(cfg.paths)


@dataclass(frozen=True)
class Invocation:
    """What the shared options resolve to: the config, its paths, and whether to print JSON."""

    cfg: GeolocateConfig
    paths: Any  # ProjectPaths (imported lazily with the config's paths)
    as_json: bool
    overridden: bool = False  # --config, --profile or --set was given (evaluate then judges with them)
    sets: tuple[str, ...] = ()  # the --set options as given (`cells.recorded.given_keys` names their keys)

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
                    config, profile, sets = kw.pop("config"), kw.pop("profile"), kw.pop("sets")
                    cfg, paths = load(config, profile, sets)
                    kw["inv"] = Invocation(cfg, paths, kw.pop("as_json"), bool(config or profile or sets), tuple(sets or ()))
                return fn(**kw)
            except UserError as exc:
                from geolocate.console import console

                # escaped: messages quote user input and pip extras (`geolocate[offline-weights]`), not markup
                console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt as exc:
                from geolocate.console import console

                hint = exc.hint if isinstance(exc, Interrupted) else "run the same command again to resume"
                console.print(f"[yellow]interrupted[/]: what was written is kept; {escape(hint)}", soft_wrap=True)
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
    from geolocate.console import console

    console.print(f"[yellow]note:[/] {old} is deprecated and will be removed in the next release; use {new}")


def checked_device(device: str | None, configured: str) -> str:
    """A --device option, or the configured device when it is not given (checked, so the error names --device)."""
    from geolocate.config import DEVICE_PATTERN

    if device is None:
        return configured
    if not re.fullmatch(DEVICE_PATTERN, device):
        raise UserError(f"--device {device!r}: choose auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps")
    return device
