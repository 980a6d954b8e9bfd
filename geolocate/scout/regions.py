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
def run_regions(cfg, data, given=()) -> RegionsResult:
    """Label, merge or drop sparse regions, split and write `regions.parquet` + `location_split.parquet`.

    Args:
        cfg: the resolved config (`regions`, `split`).
        data: the data directory.
        given: the dotted keys set on the command line (checked against what `locations` recorded).
    """
    from geolocate import atomic
    from geolocate.cells.recorded import UPSTREAM, judged_config, record_settings, stage_values
    from geolocate.split.audit import audit, buffer_train
    from geolocate.split.run import check_held_out, check_ratios
    from geolocate.scout.locations import read_locations

    cfg = judged_config(cfg, data, UPSTREAM["regions"], given)
    check_ratios(cfg.split)
    locations = read_locations(data)
    choice = choose_regions(cfg.regions, locations)
    labelled, dropped = _labelled(locations, choice)
    split = split_locations(labelled, cfg.split.group_by, cfg.split.val, cfg.split.test, cfg.split.seed)
    split, buffered = buffer_train(split, cfg.split.near_m) if cfg.split.buffer else (split, 0)
    regions = region_table(split)
    split = split.filter(pl.col("region").is_in(regions["region"].to_list()))
    check_held_out(split, "the spatial buffer (split.buffer) left some regions without train locations")
    report = {"regions": regions.height, **choice.summary(), "dropped_sparse": dropped, "buffer_dropped": buffered,
              "table_locations": locations.height, "located": labelled.height, "locations": {s: split.filter(pl.col("split") == s).height for s in ("train", "val", "test")},
              "leakage": audit(split.rename({"location_id": "image_id"}), cfg.split.near_m)}
    atomic.write_parquet(data.regions, regions)
    atomic.write_parquet(data.location_split, split.select("location_id", "region", "split").sort("location_id"))
    atomic.write_json(data.location_split_report, report)  # what the report's Data table reads (`split.run.locations_left_out`)
    record_settings(data, "regions", stage_values(cfg, "regions", choice.recorded()))
    return RegionsResult(regions, split, report)


@dataclass
class RegionChoice:
    """Where the region labels come from, and the resolution and minimum chosen ("auto" resolved)."""

    source: str
    column: str
    resolution: int | None
    min_samples: int
    note: str = ""  # why the source differs from regions.source, or what "auto" chose

    def summary(self) -> dict:
        return {"source": self.source, "h3_resolution": self.resolution, "min_samples": self.min_samples, "note": self.note}

    def recorded(self) -> dict:
        resolution = self.resolution if self.resolution is not None else "auto"
        return {"regions.source": self.source, "regions.h3_resolution": resolution, "regions.min_samples": self.min_samples}


def choose_regions(rc, locations: pl.DataFrame) -> RegionChoice:
    """The regions' source, H3 resolution and minimum for these locations.

    A `column` source whose column holds no value (an imported table without regions) falls back
    to H3 cells; "auto" resolution and minimum follow the one rule of `cells.resolution`.
    """
    from geolocate.cells.resolution import MIN_PLACES, auto_classes

    source, note = rc.source, ""
    if source == "column" and rc.column in locations.columns and not _has_values(locations[rc.column]):
        source, note = "h3", f"no location has a {rc.column!r} value, so regions are H3 cells"
    minimum = MIN_PLACES if rc.min_samples == "auto" else rc.min_samples
    if source != "h3":
        return RegionChoice(source, rc.column, None, minimum, note)
    located = locations.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    if rc.h3_resolution != "auto":
        return RegionChoice(source, rc.column, rc.h3_resolution, minimum, note)
    auto = auto_classes(located["lat"].to_numpy(), located["lon"].to_numpy())
    said = f"auto: {auto.sentence('locations')}"
    return RegionChoice(source, rc.column, auto.resolution, minimum, "; ".join(n for n in (note, said) if n))


def _has_values(column: pl.Series) -> bool:
    return bool((column.cast(pl.Utf8).fill_null("") != "").any())


def _labelled(locations: pl.DataFrame, choice: RegionChoice) -> tuple[pl.DataFrame, int]:
    """(locations with their region, regions dropped as sparse): H3 cells merge into their parents instead."""
    from geolocate.cells.assign import suggest_min_samples

    if choice.source == "h3":
        return merged_h3_regions(locations, choice.resolution, choice.min_samples), 0
    labelled = label_regions(locations, choice.source, choice.column, 0)
    counts = labelled.group_by("region").agg(n=pl.len())
    kept = counts.filter(pl.col("n") >= choice.min_samples)["region"]
    if kept.len() < 2:
        suggestion = suggest_min_samples(counts["n"].to_list())
        raise UserError(f"only {kept.len()} region(s) have >= regions.min_samples={choice.min_samples} locations; "
                        f"use --set regions.min_samples={suggestion}, add data or use --set regions.source=h3")
    return labelled.filter(pl.col("region").is_in(kept.to_list())), int(counts.height - kept.len())


def merged_h3_regions(locations: pl.DataFrame, resolution: int, min_samples: int) -> pl.DataFrame:
    """Locations labelled with H3 regions: a cell under `min_samples` locations merges into its parent,
    up to resolution 0, then into the nearest region (`cells.assign.apply_sparse_policy`), so none is lost."""
    from geolocate.cells.assign import apply_sparse_policy, cell_ids, latlng_to_cells, suggest_min_samples

    located = locations.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    located = located.with_columns(cell=pl.Series(latlng_to_cells(located["lat"].to_numpy(), located["lon"].to_numpy(), resolution)))
    counts = located.group_by("cell").agg(n=pl.len())
    mapping = apply_sparse_policy(counts, resolution, min_samples, "merge-parent", resolution).mapping
    labels = mapping["label"].drop_nulls().unique()
    if labels.len() < 2:
        raise UserError(f"{located.height} locations with a position give fewer than 2 regions of >= {min_samples} locations at "
                        f"H3 resolution {resolution}; add locations, or use --set regions.min_samples="
                        f"{suggest_min_samples(counts['n'].to_list())}")
    mapping = mapping.filter(pl.col("label").is_not_null())
    names = pl.DataFrame({"label": labels, "region": cell_ids(labels)})
    located = located.drop("region", strict=False)
    return located.join(mapping.select("cell", "label"), on="cell").join(names, on="label").drop("cell", "label")


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


def location_frame(data) -> pl.DataFrame:
    """locations ⨝ location_split ⨝ regions: one row per labelled location with its split and label."""
    from geolocate.scout.locations import read_locations

    regions = load_regions(data)
    split = pl.read_parquet(data.location_split)
    frame = (read_locations(data).drop("region").join(split, on="location_id", how="inner")
             .join(regions.select("region", "label"), on="region", how="inner").sort("location_id"))
    if frame.filter(pl.col("split") == "train").is_empty() or frame.filter(pl.col("split") == "val").is_empty():
        raise UserError("the location split has no train or no val locations; add data and run `geolocate regions` again")
    return frame
