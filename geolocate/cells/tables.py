"""Build the cells table (one row per class) and the labels table (image_id → cell_id)."""

from __future__ import annotations

import h3
import polars as pl

from geolocate.cells.assign import cell_ids
from geolocate.geo import spherical_mean
from geolocate.schemas import CELLS, LABELS, conform


def labelled_photos(photos: pl.DataFrame, mapping: pl.DataFrame) -> pl.DataFrame:
    """`photos` (with an int `cell` column) restricted to kept photos, with their class as `label`."""
    return photos.join(mapping.select("cell", "label"), on="cell", how="inner").filter(pl.col("label").is_not_null())


def cells_table(labelled: pl.DataFrame) -> pl.DataFrame:
    """One row per class (schema CELLS), sorted by cell_id.

    The centroid is the mean position of the member photos, taken on the sphere (mean of unit
    vectors) so a class straddling the antimeridian still gets a sensible centre.
    """
    stats = _centroids(labelled.group_by("label").agg(n_images=pl.len(), lat=pl.col("lat"), lon=pl.col("lon")))
    hexes = _hex_ids(stats["label"])
    stats = stats.join(hexes, on="label", how="left").join(_majority_city(labelled), on="label", how="left")
    return conform(stats, CELLS).sort("cell_id")


def train_centroids(cells: pl.DataFrame, photos: pl.DataFrame) -> pl.DataFrame:
    """`cells` with each centroid recomputed from its train photos only (schema CELLS).

    `geolocate cells` runs before the split, so its centroids average every photo, val and test
    included: a position predicted at such a centroid has seen the test photos. The split knows
    which photos are train and moves each centroid to the mean of those.

    Args:
        cells: the cells table.
        photos: cell_id, lat, lon, split of the split's photos.
    """
    train = photos.filter(pl.col("split") == "train")
    means = _centroids(train.group_by("cell_id").agg(pl.col("lat"), pl.col("lon")))
    kept = cells.join(means.rename({"centroid_lat": "train_lat", "centroid_lon": "train_lon"}), on="cell_id", how="left")
    # A class without a train photo keeps its old centroid (the split drops such classes anyway).
    kept = kept.with_columns(
        centroid_lat=pl.coalesce("train_lat", "centroid_lat"), centroid_lon=pl.coalesce("train_lon", "centroid_lon"),
    )
    return conform(kept, CELLS).sort("cell_id")


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


def _centroids(groups: pl.DataFrame) -> pl.DataFrame:
    """Each group's member positions (list columns lat, lon) → its spherical mean (centroid_lat, centroid_lon)."""
    means = [spherical_mean(lat.to_numpy(), lon.to_numpy()) for lat, lon in zip(groups["lat"], groups["lon"])]
    return groups.drop("lat", "lon").with_columns(centroid_lat=pl.Series([m[0] for m in means], dtype=pl.Float64),
                                                  centroid_lon=pl.Series([m[1] for m in means], dtype=pl.Float64))
