"""`geolocate config [show]`: print the resolved configuration, or explain every key;
`geolocate config set KEY VALUE`: change a key in the project's config.toml."""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Literal, Optional, Union, get_args, get_origin

import typer
from rich.markup import escape

from geolocate.cli.app import Invocation, command
from geolocate.config import GeolocateConfig, public_dict
from geolocate.console import stdout
from geolocate.errors import UserError


@command("config")
def config_command(
    inv: Invocation,
    action: str = typer.Argument("show", metavar="[show|set]", help="show (the default) or set KEY VALUE.", show_default=False),
    key: Optional[str] = typer.Argument(None, metavar="[KEY]", help="set: a dotted key, e.g. train.epochs.", show_default=False),
    value: Optional[str] = typer.Argument(None, metavar="[VALUE]", help="set: its value (TOML, else a string).", show_default=False),
    explain: bool = typer.Option(False, "--explain", help="List every key with its description instead."),
) -> None:
    """Print the configuration as resolved from file, profile and --set overrides; or set a key in ./config.toml.

    The current directory is the project: ./config.toml (written by `geolocate init`) is read
    when present, else geolocate's packaged defaults.
    """
    if action == "set":
        _set(inv, key, value)
        return
    if action != "show" or key is not None:
        raise UserError(f"config {' '.join(a for a in (action, key, value) if a)}: use `geolocate config show` "
                        "or `geolocate config set KEY VALUE`")
    data = public_dict(inv.cfg)
    if explain:
        for line in _explain_lines(GeolocateConfig, data):
            stdout.print(line, markup=False)
        return
    if inv.as_json:
        inv.emit(data)
        return
    stdout.print(f"# {data['source']} (profile {data['profile'] or 'none'})", markup=False, soft_wrap=True)
    _print_tables(data)


def _print_tables(values: dict, prefix: str = "") -> None:
    """`[stage]` then `  key = value` lines, a table's own keys before its sub-tables (`[fetch.panoramax]`)."""
    if prefix:
        stdout.print(f"[bold]\\[{escape(prefix)}][/]")
        for key, value in values.items():
            if not isinstance(value, dict):
                stdout.print(f"  {key} = {json.dumps(value)}", markup=False)
    for key, value in values.items():
        if isinstance(value, dict):
            _print_tables(value, f"{prefix}.{key}" if prefix else key)


def _set(inv: Invocation, key: str | None, value: str | None) -> None:
    """Set `key` in the file the command read (./config.toml, or --config)."""
    from geolocate.ops.project import set_config_key

    if key is None or value is None:
        raise UserError("config set needs a key and a value, e.g. geolocate config set train.epochs 3")
    path = Path(inv.cfg.source or "config.toml")
    old, new = set_config_key(path, key, value)
    if inv.as_json:
        inv.emit({"file": str(path), "key": key, "old": old, "value": new})
        return
    stdout.print(f"[green]✓[/] {key} = {escape(json.dumps(new))} (was {escape(json.dumps(old))}) in {escape(str(path))}", highlight=False, soft_wrap=True)


def _explain_lines(model, values: dict, prefix: str = ""):
    """`key = value (type): description` for every leaf key, with the values as resolved now."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            yield from _explain_lines(annotation, values.get(name) or {}, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name} = {json.dumps(values.get(name))} ({type_name(annotation)}): {field.description}"


def type_name(annotation) -> str:
    """`int`, `path or none`, `"fr" or "us"`, `list of str`: a config field's type as a reader says it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin in (Union, UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation)).lower()
