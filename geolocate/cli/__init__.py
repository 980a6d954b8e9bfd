"""`geolocate` command line. Importing this module must not import torch (a test checks)."""

from __future__ import annotations

# Each import registers that stage's commands on `app`; the order is the order in --help.
from geolocate.cli import (  # noqa: F401
    init,
    fetch,
    synth,
    importing,
    prepare,
    cells,
    split,
    views,
    sanity,
    models,
    train,
    evaluate,
    predict,
    embed,
    demo,
    ship,
    batch,
    config_cmd,
)
from geolocate.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
