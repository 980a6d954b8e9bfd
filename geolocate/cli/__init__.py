"""`geolocate` command line. Importing this module must not import torch (a test checks).

Commands load lazily: `geolocate --help` lists them from `COMMANDS` below without importing a
single command module, and `geolocate <name> …` imports only `geolocate.cli.<module>` (which
registers its commands with `@command()`). A test checks each summary against the command's
own docstring, so the two cannot drift apart.
"""

from __future__ import annotations

from geolocate.cli.app import app, register_lazy

# name: (module under geolocate.cli, the first paragraph of its docstring). The order is --help's.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "Write DIR/config.toml (every key, described, at the profile's and --set values) and a .gitignore."),
    "fetch": ("fetch", "Fetch photos from Mapillary (token from MAPILLARY_TOKEN) or Panoramax; re-run the same command to resume or retry failures."),
    "synth": ("synth", "Generate synthetic street photos in catalog cities and add them to the manifest (source = synthetic)."),
    "import": ("importing", "Import geotagged photos; photos without a usable position are listed with the reason, never guessed."),
    "prepare": ("prepare", "Resize new photos into data/processed/ in parallel and record them in the manifest; re-runs skip done photos."),
    "cells": ("cells", "Assign H3 cells, merge sparse ones into their parents, write cells.parquet and labels.parquet."),
    "split": ("split", "Split photos by sequence (or drive) and cell, cap the dominant class, audit leakage."),
    "locations": ("views", "Group manifest photos into four-view locations (views.radius_m, views.tolerance_deg) → data/locations.parquet."),
    "import-locations": ("views", "Import a locations table (competition layout); unreadable views are reported, not fatal."),
    "regions": ("views", "Label locations with regions, split them without leakage, centroids from train → data/regions.parquet."),
    "sanity": ("sanity", "Photos exist and decode, cells reach the minimum, no sequence leakage, dominance cap held."),
    "models": ("models", "List registered models: input size, normalisation, weights sources, tiny twins."),
    "train": ("train", "Train on the split data; every epoch is checkpointed, the best run becomes models/best."),
    "evaluate": ("evaluate", "Accuracy, median/p90 km, catastrophic errors, calibration and gates; writes REPORT.md and plots."),
    "predict": ("predict", "Predict where photos (or four-view locations) were taken. Exits 1 when any input could not be read (the others are still predicted)."),
    "serve": ("serve", "A local web page and JSON API answering photos with the model: a map of the top cells, the point, the credible circle."),
    "embed": ("embed", "Write each photo's backbone embedding (the vectors the feature cache and retrieval use)."),
    "demo": ("demo", "synth → prepare → cells → split → sanity → train → evaluate → predict, offline."),
    "export": ("ship", "Snapshot data tables, config, best model and latest run into exports/snapshot-<time>.tar.gz."),
    "freeze": ("ship", "Freeze a run whose gates all PASS into releases/<tag>/, with a snapshot export and a git tag."),
    "export-model": ("ship", "Export a run's best model to ONNX (<run>/best.onnx), checked against torch; predict then runs without torch."),
    "batch": ("batch", "fetch → prepare → cells → split → sanity → train → evaluate → export [→ clean-raw]; re-run to resume."),
    "clean-raw": ("batch", "Delete the raw downloads under data/raw/ whose processed copy exists (fetch restores them by id)."),
    "kpi": ("batch", "The data-set KPI history across batches, as a table and kpi_history.png."),
    "config": ("config_cmd", "Print the configuration as resolved from file, profile and --set overrides; or set a key in ./config.toml."),
}
register_lazy(COMMANDS)

__all__ = ["COMMANDS", "app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
