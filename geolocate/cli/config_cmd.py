"""`geolocate config`: print the resolved configuration, or explain every key."""

from __future__ import annotations

import json

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
    if explain:
        for line in _explain_lines(GeolocateConfig):
            stdout.print(line, markup=False)
        return
    data = public_dict(inv.cfg)
    if inv.as_json:
        inv.emit(data)
        return
    for stage, values in data.items():
        if isinstance(values, dict):
            stdout.print(f"[bold]\\[{stage}][/]")
            for key, value in values.items():
                stdout.print(f"  {key} = {json.dumps(value)}", markup=False)


def _explain_lines(model, prefix: str = ""):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            yield from _explain_lines(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}: {field.description}"
