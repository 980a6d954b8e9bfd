"""The four-view system's data: its labelled locations (the views themselves: `data.views`)."""

from __future__ import annotations

import polars as pl

from geolocate.data.views import ViewSet, split_views, view_files  # noqa: F401 - their home before data/views.py
from geolocate.errors import UserError


def location_frame(data) -> pl.DataFrame:
    """locations ⨝ location_split ⨝ regions: one row per labelled location with its split and label."""
    from geolocate.scout.locations import read_locations
    from geolocate.scout.regions import load_regions

    regions = load_regions(data)
    split = pl.read_parquet(data.location_split)
    frame = (read_locations(data).drop("region").join(split, on="location_id", how="inner")
             .join(regions.select("region", "label"), on="region", how="inner").sort("location_id"))
    if frame.filter(pl.col("split") == "train").is_empty() or frame.filter(pl.col("split") == "val").is_empty():
        raise UserError("the location split has no train or no val locations; add data and run `geolocate regions` again")
    return frame
