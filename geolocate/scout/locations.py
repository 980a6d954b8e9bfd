"""Group manifest photos into four-view locations (north, east, south, west).

A photo is a cardinal view when its compass angle lies within `views.tolerance_deg` of 0, 90,
180 or 270 degrees; other photos belong to no location. Views are then grouped greedily by
proximity: photos are visited in (sequence, capture time, id) order and each joins the nearest
open location whose anchor (its first photo) lies within `views.radius_m` and whose slot for
that direction is still empty; otherwise it anchors a new location. A location keeps the
sequence, creator and time of its anchor (the split groups locations by them) and may have
empty views. Neighbours are found on a metre grid of cell size `radius_m`, so the pass is
linear in the number of photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from geolocate.schemas import LOCATIONS, VIEWS, conform
from geolocate.lock import locks_data

CARDINALS = (0.0, 90.0, 180.0, 270.0)
_M_PER_DEG = 111_320.0


def cardinal_view(compass: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """Index of the cardinal view (0 = north … 3 = west) of each angle, -1 when none is close enough."""
    angle = np.nan_to_num(np.asarray(compass, dtype=np.float64), nan=-1e9) % 360.0  # NaN: no view (gap check below)
    nearest = np.round(angle / 90.0).astype(np.int64) % 4
    gap = np.abs((angle - nearest * 90.0 + 180.0) % 360.0 - 180.0)
    ok = np.isfinite(np.asarray(compass, dtype=np.float64)) & (gap <= tolerance_deg)
    return np.where(ok, nearest, -1)


@dataclass
class _Location:
    anchor: int  # row of the first photo
    x: float
    y: float
    rows: list[int] = field(default_factory=lambda: [-1, -1, -1, -1])


def group_locations(manifest: pl.DataFrame, radius_m: float, tolerance_deg: float) -> pl.DataFrame:
    """One row per location (`schemas.LOCATIONS`); `region` is left null (see `regions.py`).

    Args:
        manifest: photos with image_id, sequence_id, creator_id, captured_at, lat, lon, compass_angle.
        radius_m: photos within this distance of a location's anchor may join it.
        tolerance_deg: how far from a cardinal direction a compass angle may be.
    """
    photos = _cardinal_photos(manifest, tolerance_deg)
    if photos.is_empty():
        return conform(pl.DataFrame(), LOCATIONS).clear()
    x, y = _metres(photos["lat"].to_numpy(), photos["lon"].to_numpy())
    locations = _greedy(x, y, photos["view"].to_numpy(), radius_m)
    return _location_rows(photos, locations)


def _cardinal_photos(manifest: pl.DataFrame, tolerance_deg: float) -> pl.DataFrame:
    frame = manifest.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null() & pl.col("compass_angle").is_not_null())
    if "is_pano" in frame.columns:
        frame = frame.filter(~pl.col("is_pano").fill_null(False))
    frame = frame.with_columns(view=pl.Series(cardinal_view(frame["compass_angle"].to_numpy(), tolerance_deg), dtype=pl.Int64))
    return frame.filter(pl.col("view") >= 0).sort(["sequence_id", "captured_at", "image_id"], nulls_last=True)


def _metres(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local metres (equirectangular around the data's mean latitude; exact enough at 30 m)."""
    scale = math.cos(math.radians(float(np.mean(lat))))
    return lon * _M_PER_DEG * scale, lat * _M_PER_DEG


def _greedy(x: np.ndarray, y: np.ndarray, views: np.ndarray, radius_m: float) -> list[_Location]:
    grid: dict[tuple[int, int], list[_Location]] = {}
    locations: list[_Location] = []
    for row in range(len(x)):
        gx, gy = int(x[row] // radius_m), int(y[row] // radius_m)
        best = _nearest_open(grid, gx, gy, x[row], y[row], int(views[row]), radius_m)
        if best is None:
            best = _Location(row, float(x[row]), float(y[row]))
            locations.append(best)
            grid.setdefault((gx, gy), []).append(best)
        best.rows[int(views[row])] = row
    return locations


def _nearest_open(grid, gx: int, gy: int, x: float, y: float, view: int, radius_m: float) -> _Location | None:
    best, best_d = None, radius_m
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for loc in grid.get((gx + dx, gy + dy), ()):
                d = math.hypot(loc.x - x, loc.y - y)
                if loc.rows[view] < 0 and d <= best_d:
                    best, best_d = loc, d
    return best


def _location_rows(photos: pl.DataFrame, locations: list[_Location]) -> pl.DataFrame:
    ids, lat, lon = photos["image_id"].to_list(), photos["lat"].to_numpy(), photos["lon"].to_numpy()
    records = []
    for loc in locations:
        present = [r for r in loc.rows if r >= 0]
        anchor = photos.row(loc.anchor, named=True)
        record = {name: (ids[r] if r >= 0 else None) for name, r in zip(VIEWS, loc.rows)}
        record.update(
            location_id=ids[loc.anchor], lat=float(np.mean(lat[present])), lon=float(np.mean(lon[present])), region=None,
            sequence_id=anchor["sequence_id"], creator_id=anchor["creator_id"], captured_at=anchor["captured_at"],
        )
        records.append(record)
    frame = pl.DataFrame(records, schema_overrides={k: v for k, v in LOCATIONS.items() if k != "captured_at"}, infer_schema_length=None)
    return conform(frame, LOCATIONS).sort("location_id")


def regions_from_catalog(locations: pl.DataFrame, manifest: pl.DataFrame, catalog_name: str) -> pl.DataFrame:
    """Fill `region` from the catalog area (e.g. the US state) of each location's anchor photo's city.

    Catalog areas without a region (the French cities) leave it null; `regions.source = "h3"`
    does not need it.
    """
    from geolocate.acquire.catalog import catalog

    try:
        areas = catalog(catalog_name)
    except Exception:  # noqa: BLE001 - a catalog that cannot load only means "no region column"
        return locations
    region_of = {a.name: a.region for a in areas if a.region}
    if not region_of:
        return locations
    cities = manifest.select(location_id="image_id", city="city")
    mapped = cities.with_columns(region_new=pl.col("city").replace_strict(region_of, default=None, return_dtype=pl.Utf8))
    out = locations.join(mapped.select("location_id", "region_new"), on="location_id", how="left")
    return out.with_columns(region=pl.coalesce("region", "region_new")).drop("region_new")


@locks_data("locations")
def run_locations(cfg, data) -> pl.DataFrame:
    """`geolocate locations`: group the manifest's photos and write `data/locations.parquet`.

    Imported locations (rows whose views came from `import-locations`) are kept as they are.
    """
    from geolocate import atomic
    from geolocate.cells.recorded import record_settings, stage_values
    from geolocate.manifest import read_manifest

    manifest = read_manifest(data, required=True)
    grouped = group_locations(manifest.filter(pl.col("source").fill_null("") != "import"),
                              cfg.views.radius_m, cfg.views.tolerance_deg)
    grouped = regions_from_catalog(grouped, manifest, cfg.fetch.catalog)
    imported = read_imported(data)
    table = pl.concat([imported, grouped], how="vertical").unique("location_id", keep="first").sort("location_id")
    atomic.write_parquet(data.locations, table)
    record_settings(data, "locations", stage_values(cfg, "locations"))
    return table


def read_imported(data) -> pl.DataFrame:
    """The imported rows of an existing locations table (their views have source = import)."""
    if not data.locations.exists():
        return conform(pl.DataFrame(), LOCATIONS).clear()
    table = conform(pl.read_parquet(data.locations), LOCATIONS)
    return table.filter(pl.col("sequence_id").fill_null("").str.starts_with("import:"))


def read_locations(data) -> pl.DataFrame:
    """The locations table; UserError when it has not been built yet."""
    from geolocate.errors import UserError

    if not data.locations.exists():
        raise UserError(f"no {data.locations}; run `geolocate locations` (or `geolocate import-locations`) first")
    return conform(pl.read_parquet(data.locations), LOCATIONS)


def view_counts(locations: pl.DataFrame) -> dict[str, int]:
    """Locations with each number of views present (for the command's summary)."""
    present = sum(pl.col(v).is_not_null().cast(pl.Int64) for v in VIEWS)
    counts = locations.select(n=present)["n"].value_counts().sort("n")
    return {f"{n} views": int(c) for n, c in counts.iter_rows()}
