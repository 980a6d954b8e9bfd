"""`geolocate serve`: a local web page and JSON API answering photos with one loaded model."""

from __future__ import annotations

from typing import Optional

import typer

from geolocate.cli.app import Invocation, command, default_of


@command("serve")
def serve_command(
    inv: Invocation,
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help=f"Trained model: a run, a release, 'best' or a checkpoint file ({default_of('predict.checkpoint')}).", show_default=False),
    host: Optional[str] = typer.Option(None, "--host", help=f"Address to bind ({default_of('serve.host')}); anything but loopback opens it to the network.", show_default=False),
    port: Optional[int] = typer.Option(None, "--port", min=0, max=65535, help=f"TCP port ({default_of('serve.port')}).", show_default=False),
) -> None:
    """A local web page and JSON API answering photos with the model: a map of the top cells, the point, the credible circle.

    POST /api/predict (multipart field 'photo'), GET /api/model, GET /api/health. Needs the optional extra: pip install 'geolocate\\[serve]'.
    """
    from geolocate.serve.run import run_serve

    cfg = inv.cfg
    run_serve(cfg, inv.paths, checkpoint or cfg.predict.checkpoint, host or cfg.serve.host,
              cfg.serve.port if port is None else port)
