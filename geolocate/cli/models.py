"""`geolocate models`: list the registered models (and export offline weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geolocate.cli.app import Invocation, command
from geolocate.console import console, stdout


@command("models")
def models_command(
    inv: Invocation,
    pattern: str = typer.Argument("*", help="Shell-style filter, e.g. 'tiny*'."),
    export: Optional[tuple[str, Path]] = typer.Option(None, "--export-weights", metavar="NAME PATH",
                                            help="Write NAME's offline ImageNet weights to PATH (safetensors), for model.weights."),
) -> None:
    """List registered models: input size, normalisation, weights sources, tiny twins."""
    from geolocate.models import list_models, model_info  # timm (and torch) load here, not at CLI import

    if export:
        from geolocate.models.registry import export_weights

        written = export_weights(export[0], export[1])
        console.print(f"[green]✓[/] wrote {export[0]} weights to {written}; use: --set model.name={export[0]} --set model.weights={written}")
        return
    infos = [model_info(name) for name in list_models(pattern)]
    if inv.as_json:
        inv.emit(infos)
        return
    if not infos:
        console.print(f"no registered model matches {pattern!r}; `geolocate models` lists them all")
        return
    stdout.print(_table(infos, inv.cfg.model.name))


_NORMS = {(0.485, 0.456, 0.406): "imagenet", (0.4815, 0.4578, 0.4082): "clip", (0.5, 0.5, 0.5): "0.5"}


def _table(infos: list[dict], current: str):
    from rich.table import Table

    table = Table("name", "input", "norm", "interp.", "tiny", "weights from",
                  caption="* the configured model.name; --json gives exact values")
    for info in infos:
        name = f"{info['name']} *" if info["name"] == current else info["name"]
        table.add_row(f"[bold]{name}[/]" if info["name"] == current else name, "×".join(str(v) for v in info["input_size"][1:]), _norm_name(info["mean"]),
                      info["interpolation"], "yes" if info["tiny"] else "", info["weights"])
    table.columns[0].no_wrap = True
    return table


def _norm_name(mean: list[float]) -> str:
    key = tuple(round(v, 4) for v in mean)
    return _NORMS.get(key, ",".join(f"{v:.3f}" for v in mean))
