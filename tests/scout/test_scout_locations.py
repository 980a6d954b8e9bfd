"""Grouping manifest photos into four-view locations, region labels, the split and train centroids."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from geolocate.errors import UserError
from geolocate.geo import offset_m
from geolocate.schemas import MANIFEST, conform
from geolocate.scout.locations import cardinal_view, group_locations
from geolocate.scout.regions import label_regions, region_table, split_locations

T0 = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)


def _photo(i: int, lat: float, lon: float, compass: float, seq: str = "s1", creator: str = "c1", minute: int = 0) -> dict:
    return {"image_id": str(1000 + i), "sequence_id": seq, "creator_id": creator, "lat": lat, "lon": lon,
            "compass_angle": compass, "captured_at": T0 + timedelta(minutes=minute, seconds=i), "is_pano": False}


def _manifest(rows: list[dict]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows), MANIFEST)


def test_cardinal_view_respects_the_tolerance_and_wraps_north():
    views = cardinal_view(np.array([0.0, 358.0, 95.0, 181.0, 268.0, 45.0, 120.0, np.nan]), 20.0)
    assert views.tolist() == [0, 0, 1, 2, 3, -1, -1, -1]


def test_views_of_one_spot_form_one_location_and_far_photos_another():
    lat, lon = 45.0, 5.0
    far_lat, far_lon = (float(v) for v in offset_m(lat, lon, 200.0, 0.0))
    near = [offset_m(lat, lon, d, d) for d in (0.0, 3.0, -2.0, 4.0)]
    rows = [_photo(i, float(a), float(b), 90.0 * i + 5.0) for i, (a, b) in enumerate(near)]
    rows += [_photo(4, lat, lon, 45.0)]  # diagonal: no cardinal view
    rows += [_photo(5, far_lat, far_lon, 180.0), _photo(6, far_lat, far_lon, 2.0)]
    table = group_locations(_manifest(rows), radius_m=30.0, tolerance_deg=30.0)
    assert table.height == 2
    first = table.filter(pl.col("location_id") == "1000").row(0, named=True)
    assert [first[v] for v in ("north", "east", "south", "west")] == ["1000", "1001", "1002", "1003"]
    second = table.filter(pl.col("location_id") != "1000").row(0, named=True)
    assert second["north"] == "1006" and second["south"] == "1005" and second["east"] is None and second["west"] is None
    assert abs(second["lat"] - far_lat) < 1e-9
    assert "1004" not in table.select(pl.concat_list("north", "east", "south", "west")).to_series().explode().to_list()


def test_a_second_photo_of_the_same_direction_starts_a_new_location():
    rows = [_photo(0, 45.0, 5.0, 0.0), _photo(1, 45.0, 5.0, 90.0), _photo(2, 45.0, 5.0, 1.0)]
    table = group_locations(_manifest(rows), radius_m=30.0, tolerance_deg=30.0)
    assert table.height == 2 and sorted(table["north"].to_list()) == ["1000", "1002"]


def _labelled_locations(n_per_group: int = 4) -> pl.DataFrame:
    """Locations in two far-apart areas, four sequences each (so val and test get one)."""
    rows = []
    for area, (lat, lon) in enumerate(((45.0, 5.0), (48.0, 2.0))):
        for seq in range(4):
            for k in range(n_per_group):
                a, b = offset_m(lat, lon, 300.0 * seq + 40.0 * k, 0.0)
                rows.append({"location_id": f"{area}{seq}{k:03d}", "lat": float(a), "lon": float(b),
                             "region": f"R{area}", "sequence_id": f"a{area}s{seq}", "creator_id": f"c{area}",
                             "captured_at": T0 + timedelta(days=seq)})
    return pl.DataFrame(rows)


def test_region_labels_from_a_column_or_from_h3():
    locations = _labelled_locations()
    assert set(label_regions(locations, "column", "region", 3)["region"]) == {"R0", "R1"}
    assert label_regions(locations, "h3", "region", 3)["region"].n_unique() == 2
    with pytest.raises(UserError, match="not a column"):
        label_regions(locations, "column", "state", 3)


def test_split_keeps_sequences_whole_and_centroids_come_from_train_only():
    split = split_locations(_labelled_locations(), "sequence", 0.25, 0.25, seed=0)
    assert (split.group_by("seq").agg(pl.col("split").n_unique())["split"] == 1).all()
    assert set(split["split"]) == {"train", "val", "test"}
    regions = region_table(split)
    # Moving every val/test location far away must not move any centroid.
    moved = split.with_columns(lat=pl.when(pl.col("split") == "train").then(pl.col("lat")).otherwise(pl.col("lat") + 5.0))
    assert region_table(moved)["centroid_lat"].to_list() == pytest.approx(regions["centroid_lat"].to_list())
    assert regions["label"].to_list() == [0, 1] and regions["region"].to_list() == ["R0", "R1"]


def test_regions_come_from_the_us_catalog_state_of_the_city():
    from geolocate.scout.locations import regions_from_catalog

    rows = [_photo(0, 39.74, -104.99, 0.0), _photo(1, 39.74, -104.99, 90.0), _photo(2, 45.0, 5.0, 0.0)]
    manifest = _manifest(rows).with_columns(city=pl.Series(["Denver", "Denver", "Nowhere"]))
    table = regions_from_catalog(group_locations(manifest, 30.0, 30.0), manifest, "us")
    assert dict(table.select("location_id", "region").iter_rows()) == {"1000": "CO", "1002": None}


def _locations_dir(tmp_path, locations: pl.DataFrame):
    from geolocate.paths import DataPaths
    from geolocate.schemas import LOCATIONS

    data = DataPaths(tmp_path / "data")
    data.root.mkdir()
    conform(locations, LOCATIONS).write_parquet(data.locations)
    return data


def test_regions_refuse_a_table_of_two_sequences_instead_of_an_empty_val_and_test(cli, workdir):
    """A `group` column with 2 values used to print ✓ with `val 0 / test 0`; the failure came at train."""
    two = _labelled_locations(n_per_group=20).with_columns(sequence_id=pl.format("g{}", pl.col("location_id").str.slice(0, 1)))
    _locations_dir(workdir, two)
    result = cli("regions", "--set", "regions.source=column")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code != 0 and len(errors) == 1 and "only 2 sequence(s)" in errors[0]
    assert "✓" not in result.output


def test_regions_without_a_region_column_are_h3_cells_of_the_auto_resolution_and_keep_every_location(tmp_path):
    from geolocate.config import load_config
    from geolocate.scout.regions import choose_regions, run_regions

    locations = _labelled_locations(n_per_group=6).with_columns(region=pl.lit(None, pl.Utf8))
    lone = locations.head(1).with_columns(location_id=pl.lit("lone"), lat=pl.lit(64.14), lon=pl.lit(-21.94),
                                          sequence_id=pl.lit("lone"))
    data = _locations_dir(tmp_path, pl.concat([locations, lone]))
    cfg = load_config(None, "scout-sniper")  # regions from the `region` column, which is empty here
    choice = choose_regions(cfg.regions, pl.concat([locations, lone]))
    assert choice.source == "h3" and "no location has a 'region' value" in choice.note and "auto: resolution" in choice.note
    result = run_regions(cfg, data)
    assert result.report["source"] == "h3" and result.report["h3_resolution"] == choice.resolution
    assert result.report["located"] == locations.height + 1 and "lone" in result.split["location_id"].to_list()
    assert json.loads(data.stage_settings.read_text())["regions"]["regions.h3_resolution"] == choice.resolution
    assert json.loads(data.location_split_report.read_text()) == json.loads(json.dumps(result.report))  # the report's Data table reads it


def test_regions_prints_a_table_and_json_only_when_asked(workdir, cli):
    _locations_dir(workdir, _labelled_locations(n_per_group=6))
    shown = cli("regions", "--set", "regions.source=column")
    assert shown.exit_code == 0, shown.output
    assert not shown.stdout.strip() and "regions" in shown.stderr and "{" not in shown.stderr
    asked = cli("regions", "--set", "regions.source=column", "--json")
    assert json.loads(asked.stdout)["regions"] == 2
