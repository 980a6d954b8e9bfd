"""Classes that fit the data: "auto" resolution and minimum, every photo kept, settings recorded."""

from __future__ import annotations

import json

import h3
import numpy as np
import polars as pl
from manifest_factory import world_manifest, write

from geolocate.cells import run_cells
from geolocate.cells.assign import apply_sparse_policy, latlng_to_cells
from geolocate.cells.recorded import recorded_settings
from geolocate.cells.resolution import MIN_PLACES, auto_classes, filled_share
from geolocate.config import CellsConfig, load_config


def test_auto_counts_places_and_says_what_it_chose():
    rng = np.random.default_rng(0)
    lat, lon = 45 + rng.normal(0, 0.3, 60), 3 + rng.normal(0, 0.3, 60)
    single = auto_classes(lat, lon)
    classes, share = filled_share(lat, lon, single.resolution, MIN_PLACES)
    assert (single.filled_cells, single.share) == (classes, share) and single.min_samples == MIN_PLACES
    assert single.sentence() == (f"resolution {single.resolution}: {classes} cells, {round(100 * share)} % of photos "
                                 f"in cells of ≥ {MIN_PLACES}")
    # Four views cut at each place: the same resolution, and a class needs 5 places' worth of photos.
    views = auto_classes(np.repeat(lat, 4), np.repeat(lon, 4))
    assert views.resolution == single.resolution and views.min_samples == 4 * MIN_PLACES
    assert "% of places in cells" in views.sentence()


def test_default_cells_fit_a_world_wide_set_and_keep_every_photo(tmp_path):
    """Resolution 7 and 150 photos refused such a set; "auto" labels every photo with a position."""
    frame = world_manifest()
    data = write(tmp_path / "data", frame)
    result = run_cells(CellsConfig(), data)
    assert result.auto is not None and result.resolution == result.auto.resolution
    assert result.dropped == [] and pl.read_parquet(data.labels).height == frame.height
    assert result.joined_photos + sum(m["n"] for m in result.merged) > 0  # the lone photos found a class
    cells = pl.read_parquet(data.cells)
    assert cells["resolution"].n_unique() > 1  # mixed resolutions: dense cells and merged parents
    for cell_id in cells["cell_id"]:  # every consumer draws classes with h3, at any resolution
        assert len(h3.cell_to_boundary(cell_id)) >= 5
    recorded = recorded_settings(data)["cells"]
    assert recorded["cells.resolution"] == result.resolution and recorded["cells.min_samples"] == result.min_samples


def test_a_cell_still_sparse_at_resolution_zero_joins_the_nearest_class():
    paris, lyon, reykjavik = (48.85, 2.35), (45.76, 4.84), (64.14, -21.94)
    cells = latlng_to_cells(np.array([paris[0], lyon[0], reykjavik[0]]), np.array([paris[1], lyon[1], reykjavik[1]]), 2)
    counts = pl.DataFrame({"cell": cells, "n": [30, 30, 2]})
    outcome = apply_sparse_policy(counts, 2, 10, "merge-parent", 15)
    assert outcome.dropped == []
    assert outcome.joined == [{"cell_id": h3.int_to_str(int(cells[2])), "n": 2, "class": h3.int_to_str(int(cells[0]))}]
    # A limited climb keeps dropping what is still sparse (France v1's seed).
    assert apply_sparse_policy(counts, 2, 10, "merge-parent", 1).dropped[0]["n"] == 2


def test_v1_keeps_its_fixed_classes_and_res_overrides_auto(tmp_path):
    v1 = load_config(None, "v1").cells
    assert (v1.resolution, v1.min_samples, v1.max_merge_levels) == (7, 150, 2)
    assert (load_config().cells.resolution, load_config().cells.min_samples) == ("auto", "auto")
    data = write(tmp_path / "data", world_manifest())
    result = run_cells(CellsConfig(), data, resolution=3)
    assert result.resolution == 3 and result.min_samples == MIN_PLACES
    assert json.loads(data.stage_settings.read_text())["cells"]["cells.resolution"] == 3


def test_cells_says_why_its_count_differs_from_the_manifest(tmp_path):
    frame = world_manifest()
    capture = frame["image_id"][0]
    views = frame.head(4).with_columns(image_id=pl.Series([f"{capture}@{a:03d}" for a in (0, 90, 180, 270)]),
                                       parent_id=pl.lit(capture), path=pl.lit(None, pl.Utf8))
    data = write(tmp_path / "data", pl.concat([frame, views], how="diagonal_relaxed"))
    counts = run_cells(CellsConfig(), data).counts
    assert counts == {"manifest_rows": frame.height + 4, "originals": frame.height, "captures_cut": 1, "views": 4,
                      "photos": frame.height + 3, "invalid_positions": 0}


def test_imported_photos_get_auto_classes_even_under_a_profile_that_fixes_them(tmp_path):
    """France v1's resolution 7 / 150 photos refuse a user's own world-wide photos: imported ones get the auto rule."""
    import pytest

    from geolocate.errors import UserError

    from geolocate.config import profile_values

    v1, fixed = load_config(None, "v1").cells, profile_values("v1", "cells")
    assert (fixed["resolution"], fixed["min_samples"]) == (7, 150)
    fetched = world_manifest().with_columns(source=pl.lit("mapillary"))
    with pytest.raises(UserError, match="no cell reaches cells.min_samples = 150"):  # the catalog's fixed sizes hold
        run_cells(v1, write(tmp_path / "fetched", fetched), profile_fixed=fixed)
    imported = world_manifest().with_columns(source=pl.lit("local"))
    result = run_cells(v1, write(tmp_path / "imported", imported), profile_fixed=fixed)
    assert result.auto is not None and result.imported and "resolution 7" in result.imported
    assert result.dropped == [] and result.min_samples == MIN_PLACES  # every photo keeps a class
    kept = run_cells(v1, write(tmp_path / "given", imported), resolution=3, profile_fixed=fixed)
    assert (kept.resolution, kept.min_samples) == (3, MIN_PLACES)  # --res wins, the minimum stays auto
    with pytest.raises(UserError, match="min_samples = 150"):  # a --set minimum wins too
        run_cells(v1, write(tmp_path / "set", imported), given=("cells.min_samples",), profile_fixed=fixed)
    with pytest.raises(UserError, match="min_samples = 150"):  # a project's own value (not the profile's) too
        run_cells(v1.model_copy(update={"resolution": 3}), write(tmp_path / "own", imported),
                  profile_fixed={**fixed, "min_samples": 40})
    with pytest.raises(UserError, match="min_samples = 150"):  # as-set keeps the profile's sizes
        run_cells(v1.model_copy(update={"imported": "as-set"}), write(tmp_path / "as-set", imported), profile_fixed=fixed)
