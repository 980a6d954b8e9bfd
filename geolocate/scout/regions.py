"""Region labels, the leakage-safe split of locations, and region centroids from train only.

Regions are the scout-sniper's classes: a table column (a US state) or coarse H3 cells. The
split reuses France's grouped, stratified split (`geolocate.split.grouped`): a location stands
for a photo, its region for a cell, and its anchor's sequence or drive for the group, so the
same rules hold (a sequence or drive never straddles splits; every region keeps a train group).
Centroids are the spherical mean of *train* locations only, so nothing about val or test
positions leaks into the position a region predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from geolocate.errors import UserError
from geolocate.lock import locks_data

REGIONS = {"region": pl.Utf8, "label": pl.Int64, "centroid_lat": pl.Float64, "centroid_lon": pl.Float64,
           "n_train": pl.Int64, "n_val": pl.Int64, "n_test": pl.Int64}


@dataclass
class RegionsResult:
    """The class table, the split, and the leakage audit."""

    regions: pl.DataFrame
    split: pl.DataFrame
    report: dict


def label_regions(locations: pl.DataFrame, source: str, column: str, h3_resolution: int) -> pl.DataFrame:
    """`locations` with a `region` column from `column` or from H3 cells; unlabelled rows dropped."""
    located = locations.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    if source == "h3":
        import h3

        cells = [h3.latlng_to_cell(a, b, h3_resolution) for a, b in zip(located["lat"].to_list(), located["lon"].to_list())]
        return located.with_columns(region=pl.Series(cells, dtype=pl.Utf8))
    if column not in located.columns:
        raise UserError(f"regions.column = {column!r} is not a column of the locations table; "
                        f"use one of {', '.join(located.columns)} or --set regions.source=h3")
    labelled = located.with_columns(region=pl.col(column).cast(pl.Utf8)).filter(pl.col("region").fill_null("") != "")
    if labelled.is_empty():
        raise UserError(f"no location has a value in column {column!r}; fill it, or use --set regions.source=h3")
    return labelled


def split_locations(labelled: pl.DataFrame, group_by: str, val: float, test: float, seed: int) -> pl.DataFrame:
    """location_id, region, split, seq, drive, lat, lon: France's grouped split on locations."""
    from geolocate.split.grouped import assign_splits, with_groups

    frame = labelled.select(
        image_id="location_id", cell_id="region", sequence_id=pl.col("sequence_id").fill_null(""),
        creator_id="creator_id", captured_at="captured_at", lat="lat", lon="lon",
    )
    frame = assign_splits(with_groups(frame, group_by), val, test, seed)
    return frame.rename({"image_id": "location_id", "cell_id": "region"})


def region_table(split: pl.DataFrame) -> pl.DataFrame:
    """One row per region with a train location: label (sorted by region), train centroid, counts."""
    from geolocate.geo import spherical_mean

    rows = []
    for region, group in split.group_by("region"):
        train = group.filter(pl.col("split") == "train")
        if train.is_empty():
            continue
        lat, lon = spherical_mean(train["lat"].to_numpy(), train["lon"].to_numpy())
        counts = {f"n_{s}": group.filter(pl.col("split") == s).height for s in ("train", "val", "test")}
        rows.append({"region": region[0], "centroid_lat": lat, "centroid_lon": lon, **counts})
    table = pl.DataFrame(rows, infer_schema_length=None).sort("region").with_row_index("label")
    return table.select([pl.col(k).cast(v) for k, v in REGIONS.items()])


@locks_data("regions")
def run_regions(cfg, data) -> RegionsResult:
    """Label, filter sparse regions, split and write `regions.parquet` + `location_split.parquet`."""
    from geolocate import atomic
    from geolocate.cells.assign import suggest_min_samples
    from geolocate.split.audit import audit, buffer_train
    from geolocate.split.run import check_ratios
    from geolocate.scout.locations import read_locations

    check_ratios(cfg.split)
    rc = cfg.regions
    labelled = label_regions(read_locations(data), rc.source, rc.column, rc.h3_resolution)
    counts = labelled.group_by("region").agg(n=pl.len())
    kept = counts.filter(pl.col("n") >= rc.min_samples)["region"]
    labelled = labelled.filter(pl.col("region").is_in(kept.to_list()))
    if kept.len() < 2:
        suggestion = suggest_min_samples(counts["n"].to_list())
        raise UserError(f"only {kept.len()} region(s) have >= regions.min_samples={rc.min_samples} locations; "
                        f"use --set regions.min_samples={suggestion}, add data or use a finer regions.h3_resolution")
    split = split_locations(labelled, cfg.split.group_by, cfg.split.val, cfg.split.test, cfg.split.seed)
    split, buffered = buffer_train(split, cfg.split.near_m) if cfg.split.buffer else (split, 0)
    regions = region_table(split)
    split = split.filter(pl.col("region").is_in(regions["region"].to_list()))
    report = {"regions": regions.height, "dropped_sparse": int(counts.height - kept.len()), "buffer_dropped": buffered,
              "locations": {s: split.filter(pl.col("split") == s).height for s in ("train", "val", "test")},
              "leakage": audit(split.rename({"location_id": "image_id"}), cfg.split.near_m)}
    atomic.write_parquet(data.regions, regions)
    atomic.write_parquet(data.location_split, split.select("location_id", "region", "split").sort("location_id"))
    return RegionsResult(regions, split, report)


def load_regions(data) -> pl.DataFrame:
    """The region classes; UserError when `geolocate regions` has not run."""
    if not data.regions.exists() or not data.location_split.exists():
        raise UserError(f"no {data.regions}; run `geolocate regions` first")
    return pl.read_parquet(data.regions).sort("label")


def region_records(regions: pl.DataFrame) -> list[dict]:
    """Classes as checkpoints store them (`cell_id` is the region, so v1 readers understand them)."""
    return [{"cell_id": r["region"], "centroid_lat": r["centroid_lat"], "centroid_lon": r["centroid_lon"], "city": r["region"]}
            for r in regions.sort("label").iter_rows(named=True)]


def centroids_of(regions: pl.DataFrame) -> np.ndarray:
    """[C, 2] (lat, lon) of every region, row = label."""
    return regions.sort("label").select("centroid_lat", "centroid_lon").to_numpy().astype(np.float64)
