"""The training table: manifest ⨝ labels ⨝ split, with each photo's class index.

Training and evaluation read processed photos only (`prepare` wrote them), so `clean-raw`
can delete the raw downloads without breaking anything downstream.
"""

from __future__ import annotations

import polars as pl

from geolocate.manifest import read_manifest
from geolocate.cells import load_classes
from geolocate.errors import UserError
from geolocate.paths import DataPaths


def training_frame(data: DataPaths, classes: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per labelled, split photo: image_id, processed_path, lat, lon, cell_id, label, split.

    Raises:
        UserError: a missing table, or processed photos missing on disk (with how to restore them).
    """
    for path, step in ((data.labels, "cells"), (data.split, "split")):
        if not path.exists():
            raise UserError(f"no {path}; run `geolocate {step}` first")
    classes = load_classes(data) if classes is None else classes
    manifest = read_manifest(data, required=True).select("image_id", "processed_path", "lat", "lon", "city")
    frame = (
        pl.read_parquet(data.split)
        .join(pl.read_parquet(data.labels), on="image_id", how="inner")
        .join(manifest, on="image_id", how="inner")
        .join(classes.select("cell_id", pl.col("label").cast(pl.Int64)), on="cell_id", how="inner")
        .sort("image_id")
    )
    _check_processed(data, frame)
    return frame


def _check_processed(data: DataPaths, frame: pl.DataFrame) -> None:
    unprepared = frame.filter(pl.col("processed_path").is_null()).height
    paths = frame.filter(pl.col("processed_path").is_not_null())["processed_path"].to_list()
    missing = unprepared + sum(not (data.root / p).is_file() for p in paths)
    if missing:
        raise UserError(
            f"{missing} of {frame.height} processed photos are missing under {data.processed}; "
            "restore them with `geolocate fetch` (re-downloads by id) then `geolocate prepare`"
        )
