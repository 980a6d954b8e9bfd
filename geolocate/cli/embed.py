"""`geolocate embed`: backbone image embeddings for photos, one parquet row per photo."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geolocate.cli.app import Invocation, command, default_of
from geolocate.console import console


@command("embed")
def embed_command(
    inv: Invocation,
    photos: list[Path] = typer.Argument(..., help="Photo files or directories of photos."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=f"Registered model ({default_of('model.name')}).", show_default=False),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="Local weights (default: model.weights when --model is the configured one)."),
    out: Path = typer.Option(Path("embeddings.parquet"), "--out", "-o", help="Parquet file to write (path, name, embedding)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Photos per forward pass."),
) -> None:
    """Write each photo's backbone embedding (the vectors the feature cache and retrieval use)."""
    from geolocate.models.embed import run_embed  # torch loads here, not at CLI import

    cfg = inv.cfg
    name = model or cfg.model.name
    if weights is None and name == cfg.model.name:
        weights = cfg.model.weights
    result = run_embed(photos, name, out, weights=weights, pretrained=cfg.model.pretrained, batch_size=batch_size)
    for reason in result.bad:
        console.print(f"[yellow]skipped[/] {reason}", soft_wrap=True)
    summary = {"model": result.model, "out": str(result.out), "rows": result.rows, "dim": result.dim, "bad": len(result.bad)}
    if inv.as_json:
        inv.emit(summary, indent=None)
    else:
        console.print(f"[green]✓[/] {result.rows} embeddings of dim {result.dim} ({result.model}) → {result.out} (bad photos: {len(result.bad)})")
