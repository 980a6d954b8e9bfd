"""Build the cells table (one row per class) and the labels table (image_id → cell_id)."""

from __future__ import annotations

import h3
import polars as pl

from geolocate.cells.assign import cell_ids
from geolocate.schemas import CELLS, LABELS, conform


def labelled_photos(photos: pl.DataFrame, mapping: pl.DataFrame) -> pl.DataFrame:
    """`photos` (with an int `cell` column) restricted to kept photos, with their class as `label`."""
    return photos.join(mapping.select("cell", "label"), on="cell", how="inner").filter(pl.col("label").is_not_null())


def cells_table(labelled: pl.DataFrame) -> pl.DataFrame:
    """One row per class (schema CELLS), sorted by cell_id.

    The centroid is the mean position of the member photos, taken on the sphere (mean of unit
    vectors) so a class straddling the antimeridian still gets a sensible centre.
    """
    stats = labelled.group_by("label").agg(
        n_images=pl.len(),
        centroid_lat=_sphere_mean_lat(),
        centroid_lon=_sphere_mean_lon(),
    )
    hexes = _hex_ids(stats["label"])
    stats = stats.join(hexes, on="label", how="left").join(_majority_city(labelled), on="label", how="left")
    return conform(stats, CELLS).sort("cell_id")


def labels_table(labelled: pl.DataFrame) -> pl.DataFrame:
    """image_id → cell_id for every kept photo (schema LABELS), sorted by image_id."""
    hexes = _hex_ids(labelled["label"].unique())
    return conform(labelled.join(hexes, on="label", how="left"), LABELS).sort("image_id")


def _hex_ids(labels: pl.Series) -> pl.DataFrame:
    """label (int) → cell_id, resolution and H3 centre, for the few distinct classes."""
    ints = labels.unique().sort().to_list()
    hexes = cell_ids(ints)
    centers = [h3.cell_to_latlng(c) for c in hexes]
    return pl.DataFrame(
        {
            "label": pl.Series(ints, dtype=pl.Int64),
            "cell_id": hexes,
            "resolution": pl.Series([h3.get_resolution(c) for c in hexes], dtype=pl.Int8),
            "center_lat": pl.Series([c[0] for c in centers], dtype=pl.Float64),
            "center_lon": pl.Series([c[1] for c in centers], dtype=pl.Float64),
        }
    )


def _majority_city(labelled: pl.DataFrame) -> pl.DataFrame:
    """label → most frequent non-null city (ties broken alphabetically, so it is deterministic)."""
    return (
        labelled.filter(pl.col("city").is_not_null())
        .group_by("label", "city")
        .agg(count=pl.len())
        .sort(["label", "count", "city"], descending=[False, True, False])
        .group_by("label", maintain_order=True)
        .agg(pl.col("city").first())
    )


def _unit_vectors() -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    lat, lon = pl.col("lat").radians(), pl.col("lon").radians()
    return lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()


def _sphere_mean_lat() -> pl.Expr:
    x, y, z = _unit_vectors()
    return pl.arctan2(z.mean(), (x.mean() ** 2 + y.mean() ** 2).sqrt()).degrees()


def _sphere_mean_lon() -> pl.Expr:
    x, y, _ = _unit_vectors()
    return pl.arctan2(y.mean(), x.mean()).degrees()
