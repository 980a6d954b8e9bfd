"""`geolocate config`: print the resolved configuration, or explain every key."""

from __future__ import annotations

import json
from types import UnionType
from typing import Literal, Union, get_args, get_origin

import typer

from geolocate.cli.app import Invocation, command
from geolocate.config import GeolocateConfig, public_dict
from geolocate.console import stdout


@command("config")
def config_command(
    inv: Invocation,
    explain: bool = typer.Option(False, "--explain", help="List every key with its description instead."),
) -> None:
    """Print the configuration as resolved from file, profile and --set overrides."""
    data = public_dict(inv.cfg)
    if explain:
        for line in _explain_lines(GeolocateConfig, data):
            stdout.print(line, markup=False)
        return
    if inv.as_json:
        inv.emit(data)
        return
    for stage, values in data.items():
        if isinstance(values, dict):
            stdout.print(f"[bold]\\[{stage}][/]")
            for key, value in values.items():
                stdout.print(f"  {key} = {json.dumps(value)}", markup=False)


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
