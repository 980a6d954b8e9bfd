"""Table schemas, declared once. Every Parquet file geolocate writes goes through `conform`."""

from __future__ import annotations

import polars as pl

UTC = pl.Datetime("us", "UTC")

# One row per photo. `path` is the raw download relative to paths.data (empty once clean-raw ran);
# `processed_path` is the copy `prepare` wrote, which training reads.
MANIFEST = {
    "image_id": pl.Utf8,
    "sequence_id": pl.Utf8,
    "creator_id": pl.Utf8,
    "creator_username": pl.Utf8,
    "captured_at": UTC,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "compass_angle": pl.Float64,
    "is_pano": pl.Boolean,
    "camera_type": pl.Utf8,
    "city": pl.Utf8,
    "batch": pl.Utf8,
    "source": pl.Utf8,
    "path": pl.Utf8,
    "width": pl.Int32,
    "height": pl.Int32,
    "bytes": pl.Int64,
    "fetched_at": UTC,
    "processed_path": pl.Utf8,
    "license": pl.Utf8,  # per photo (instances and users differ), e.g. CC-BY-SA-4.0, etalab-2.0
    "parent_id": pl.Utf8,  # a perspective view's 360° capture (views are cut by `prepare`)
}

CELLS = {
    "cell_id": pl.Utf8,
    "resolution": pl.Int8,
    "n_images": pl.Int64,
    "centroid_lat": pl.Float64,
    "centroid_lon": pl.Float64,
    "center_lat": pl.Float64,
    "center_lon": pl.Float64,
    "city": pl.Utf8,
}

# The class of every kept photo (photos of dropped cells are absent).
LABELS = {"image_id": pl.Utf8, "cell_id": pl.Utf8}

SPLIT = {"image_id": pl.Utf8, "split": pl.Utf8}
SPLITS = ("train", "val", "test")

KPI = {
    "timestamp": UTC,
    "batches": pl.Utf8,
    "photos": pl.Int64,
    "classes": pl.Int64,
    "min_per_cell": pl.Int64,
    "median_per_cell": pl.Float64,
    "max_per_cell": pl.Int64,
    "top_class_share": pl.Float64,
}

# Scout-sniper: one row per location, up to four views (image ids; null when missing).
VIEWS = ("north", "east", "south", "west")
LOCATIONS = {
    "location_id": pl.Utf8,
    "north": pl.Utf8,
    "east": pl.Utf8,
    "south": pl.Utf8,
    "west": pl.Utf8,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "region": pl.Utf8,
    "sequence_id": pl.Utf8,
    "creator_id": pl.Utf8,
    "captured_at": UTC,
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with `schema`."""
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`df` with exactly the schema's columns, in order and cast; missing columns become null."""
    cols = [
        (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    ]
    return df.select(cols)
