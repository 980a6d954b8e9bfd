"""The photo manifest: one row per photo, schema `schemas.MANIFEST`, written atomically.

Every writer (fetch, synth, prepare, clean-raw) goes through `merge_manifest` / `write_manifest`,
so re-running a step never duplicates rows: rows are keyed by `image_id`, the newer row wins.
"""

from __future__ import annotations

import polars as pl

from geolocate import atomic
from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.schemas import MANIFEST, conform, empty


def read_manifest(data: DataPaths, required: bool = False) -> pl.DataFrame:
    """The manifest, or an empty frame when there is none yet (UserError when `required`)."""
    if not data.manifest.exists():
        if required:
            raise UserError(f"no manifest at {data.manifest}; run `geolocate fetch` (or `geolocate synth`) first")
        return empty(MANIFEST)
    try:
        return conform(pl.read_parquet(data.manifest), MANIFEST)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserError(f"cannot read {data.manifest} ({exc}); restore it from an export or re-run fetch") from None


def write_manifest(data: DataPaths, df: pl.DataFrame) -> None:
    """Replace the manifest atomically with `df` (conformed, one row per image_id, sorted)."""
    df = conform(df, MANIFEST).unique("image_id", keep="last", maintain_order=True).sort("image_id")
    atomic.write_parquet(data.manifest, df)


def merge_manifest(data: DataPaths, new_rows: pl.DataFrame) -> pl.DataFrame:
    """Add or update rows by image_id (new rows win) and write; returns the merged manifest."""
    merged = pl.concat([read_manifest(data), conform(new_rows, MANIFEST)], how="vertical")
    merged = merged.unique("image_id", keep="last", maintain_order=True).sort("image_id")
    write_manifest(data, merged)
    return merged
