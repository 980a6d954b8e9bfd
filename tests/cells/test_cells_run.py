"""`run_cells` and `geolocate cells` end to end on small factory manifests."""

from __future__ import annotations

import json
import subprocess
import sys

import h3
import numpy as np
import polars as pl
import pytest
from manifest_factory import manifest_frame, write

from geolocate.cells import load_classes, run_cells
from geolocate.cells.kpi import read_kpi_history
from geolocate.config import CellsConfig
from geolocate.errors import UserError
from geolocate.schemas import CELLS, KPI, LABELS

CFG = CellsConfig(resolution=6, min_samples=30, max_merge_levels=2)


@pytest.fixture
def data(tmp_path):
    return write(tmp_path / "data", manifest_frame(n_sequences=60, seed=3))


def test_tables_follow_the_schemas_and_agree(data):
    result = run_cells(CFG, data)
    cells, labels = pl.read_parquet(data.cells), pl.read_parquet(data.labels)
    assert dict(cells.schema) == CELLS and dict(labels.schema) == LABELS
    assert cells["cell_id"].to_list() == sorted(cells["cell_id"].to_list())
    per_cell = labels.group_by("cell_id").agg(n=pl.len())
    joined = cells.join(per_cell, on="cell_id")
    assert joined.height == cells.height and (joined["n"] == joined["n_images"]).all()
    assert (cells["n_images"] >= CFG.min_samples).all()
    assert labels.height + result.dropped_photos == 60 * 12


def test_centroid_center_and_city_are_those_of_the_members(data):
    run_cells(CFG, data)
    manifest = pl.read_parquet(data.manifest)
    members = pl.read_parquet(data.labels).join(manifest, on="image_id")
    for row in pl.read_parquet(data.cells).iter_rows(named=True):
        mine = members.filter(pl.col("cell_id") == row["cell_id"])
        assert row["centroid_lat"] == pytest.approx(mine["lat"].mean(), abs=1e-4)
        assert row["centroid_lon"] == pytest.approx(mine["lon"].mean(), abs=1e-4)
        assert (row["center_lat"], row["center_lon"]) == pytest.approx(h3.cell_to_latlng(row["cell_id"]))
        assert row["resolution"] == h3.get_resolution(row["cell_id"])
        assert row["city"] == mine["city"].mode().sort()[0]


def test_load_classes_is_sorted_with_the_row_index_as_label(data):
    run_cells(CFG, data)
    classes = load_classes(data)
    assert classes["label"].to_list() == list(range(classes.height))
    assert classes["cell_id"].to_list() == sorted(classes["cell_id"].to_list())


def test_an_identical_rerun_adds_no_kpi_row(data):
    run_cells(CFG, data)
    run_cells(CFG, data)
    assert read_kpi_history(data).height == 1
    run_cells(CFG.model_copy(update={"min_samples": 60}), data)
    assert read_kpi_history(data).height == 2


def test_resolution_8_is_refused_on_a_small_data_set_unless_forced(data):
    strict = CFG.model_copy(update={"res8_min_images": 10_000, "min_samples": 5})
    with pytest.raises(UserError, match=r"resolution 8 needs at least 10,000 photos.*--force"):
        run_cells(strict, data, resolution=8)
    assert not data.cells.exists()
    forced = run_cells(strict, data, resolution=8, force=True)
    assert forced.resolution == 8 and (forced.cells["resolution"] <= 8).all()
    assert run_cells(strict.model_copy(update={"res8_min_images": 720}), data, resolution=8).resolution == 8


def test_kpi_history_appends_one_row_per_run(data):
    first = run_cells(CFG, data)
    run_cells(CFG.model_copy(update={"min_samples": 60}), data)
    history = read_kpi_history(data)
    assert dict(history.schema) == KPI and history.height == 2
    assert history["batches"].to_list() == ["01,02", "01,02"]
    row = history.row(0, named=True)
    sizes = first.cells["n_images"]
    assert row["photos"] == sizes.sum() and row["classes"] == first.cells.height
    assert (row["min_per_cell"], row["max_per_cell"]) == (sizes.min(), sizes.max())
    assert row["median_per_cell"] == sizes.median()
    assert row["top_class_share"] == pytest.approx(sizes.max() / sizes.sum())
    assert history.row(1, named=True)["min_per_cell"] >= 60


def test_photos_without_a_valid_position_are_skipped(tmp_path):
    frame = manifest_frame(n_sequences=10, seed=1)
    frame = frame.with_columns(lat=pl.when(pl.int_range(pl.len()) < 3).then(np.nan).otherwise(pl.col("lat")))
    frame = frame.with_columns(lon=pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("lon")))
    data = write(tmp_path, frame)
    result = run_cells(CellsConfig(resolution=4, min_samples=1), data)
    assert result.invalid_positions == 4 and result.labels.height == 116


def test_no_cell_reaching_the_minimum_is_a_user_error(data):
    with pytest.raises(UserError, match="no cell reaches cells.min_samples"):
        run_cells(CFG.model_copy(update={"min_samples": 100_000}), data)


def test_cli_cells_writes_the_tables_and_reports_kpis(cli, workdir):
    write(workdir / "data", manifest_frame(n_sequences=60, seed=3))
    result = cli("cells", "--profile", "tiny", "--set", "cells.min_samples=30", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["resolution"] == 6 and summary["kpis"]["classes"] == pl.read_parquet("data/cells.parquet").height
    assert "top class" in result.stderr and (workdir / "data" / "kpi_history.parquet").exists()


def test_cli_refuses_res_8_in_one_line(cli, workdir):
    write(workdir / "data", manifest_frame(n_sequences=5))
    result = cli("cells", "--res", "8")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--force" in lines[0]


def test_cli_without_a_manifest_says_what_to_run(cli, workdir):
    result = cli("cells")
    assert result.exit_code == 2 and "geolocate fetch" in result.output


def test_the_data_stages_do_not_import_torch():
    code = (
        "import sys, geolocate.cells, geolocate.split, geolocate.split.sanity; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_single_class_is_refused_with_a_minimum_that_gives_several(data):
    """`cells.min_samples=150` on a small set used to write one class, which teaches nothing."""
    import re

    drop = CFG.model_copy(update={"sparse": "drop"})
    sizes = run_cells(drop.model_copy(update={"min_samples": 1}), data).cells["n_images"].sort(descending=True).to_list()
    assume_unique_top = sizes[0] > sizes[1]
    assert assume_unique_top and len(sizes) >= 5
    with pytest.raises(UserError, match=r"only 1 cell reaches .* --set cells.min_samples=\d+") as info:
        run_cells(drop.model_copy(update={"min_samples": sizes[0]}), data)
    suggested = int(re.search(r"min_samples=(\d+) or", str(info.value)).group(1))
    assert run_cells(drop.model_copy(update={"min_samples": suggested}), data).cells.height >= 5
