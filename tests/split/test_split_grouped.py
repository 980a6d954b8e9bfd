"""Grouped stratified split: no group straddles splits, every cell trains, determinism."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from manifest_factory import manifest_frame, write

from geolocate.cells import run_cells
from geolocate.config import load_config
from geolocate.errors import UserError
from geolocate.split import run_split
from geolocate.split.grouped import assign_splits, quotas, with_groups


def split_frame(data):
    manifest = pl.read_parquet(data.manifest)
    return pl.read_parquet(data.split).join(pl.read_parquet(data.labels), on="image_id").join(manifest, on="image_id")


def test_quotas_keep_train_and_need_three_groups():
    n_val, n_test = quotas(np.array([1, 2, 3, 4, 10, 100]), 0.1, 0.1)
    assert n_val.tolist() == [0, 0, 1, 1, 1, 10] and n_test.tolist() == [0, 0, 1, 1, 1, 10]
    n_val, n_test = quotas(np.array([3, 4, 5, 9]), 0.45, 0.45)
    assert (np.array([3, 4, 5, 9]) - n_val - n_test >= 1).all() and (n_val >= 1).all() and (n_test >= 1).all()
    assert quotas(np.array([50]), 0.0, 0.2)[0].tolist() == [0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31 - 1),  # config integers stop at 2**31 - 1 (hostile-input bound)
    data_seed=st.integers(0, 1000),
    n_sequences=st.integers(3, 60),
    per_sequence=st.integers(1, 15),
    group_by=st.sampled_from(["sequence", "drive"]),
    minimum=st.sampled_from([1, 8]),
)
def test_no_group_is_in_two_splits_and_every_cell_trains(tmp_path_factory, seed, data_seed, n_sequences, per_sequence, group_by, minimum):
    data = write(tmp_path_factory.mktemp("d"), manifest_frame(n_sequences, per_sequence, seed=data_seed, spread_m=1500))
    cfg = load_config(None, "tiny", [f"cells.min_samples={minimum}", f"split.seed={seed}", f"split.group_by='{group_by}'"])
    try:
        run_cells(cfg.cells, data)
    except UserError:  # no cell reached the minimum: nothing to split
        assume(False)
    try:
        report = run_split(cfg, data).report
    except UserError as exc:  # too few groups to spare one for val and one for test: refused, never empty
        assert "val and test need" in str(exc) or "train, val and test need one each" in str(exc)
        assume(False)
    assert report["photos"]["val"] > 0 and report["photos"]["test"] > 0
    frame = with_groups(split_frame(data), group_by)
    for key in ("group", "seq"):  # sequences never straddle, whichever grouping
        assert frame.group_by(key).agg(pl.col("split").n_unique())["split"].max() == 1
    assert report["leakage"]["sequences_shared"] == 0
    cells = pl.read_parquet(data.cells)["cell_id"]
    assert set(cells) == set(frame.filter(pl.col("split") == "train")["cell_id"])
    assert sum(report["photos"].values()) == frame.height
    train_sizes = frame.filter(pl.col("split") == "train").group_by("cell_id").len()["len"]
    if report["dominance"]["attainable"]:  # the dominance cap holds
        assert train_sizes.max() <= cfg.cells.max_dominance * train_sizes.sum() * (1 + 1e-9)
    else:
        assert len(cells) * cfg.cells.max_dominance < 1


def test_cells_with_three_groups_reach_val_and_test(labelled, cfg):
    run_split(cfg, labelled)
    frame = with_groups(split_frame(labelled), "sequence")
    primary = frame.group_by("group", "cell_id").agg(n=pl.len()).sort("n", descending=True).group_by("group").first()
    rich = primary.group_by("cell_id").agg(g=pl.len()).filter(pl.col("g") >= 3)["cell_id"]
    assert len(rich) > 3
    for split in ("val", "test"):
        assert set(rich) <= set(frame.filter(pl.col("split") == split)["cell_id"])


def test_same_seed_same_split_other_seed_other_split(labelled, cfg):
    first = run_split(cfg, labelled).split
    again = run_split(cfg, labelled).split
    other = run_split(cfg.model_copy(update={"split": cfg.split.model_copy(update={"seed": 1})}), labelled).split
    assert first.equals(again) and not first.equals(other)


def test_the_split_does_not_depend_on_row_order(labelled):
    frame = pl.read_parquet(labelled.labels).join(pl.read_parquet(labelled.manifest), on="image_id")
    frame = with_groups(frame, "sequence")
    a = assign_splits(frame, 0.1, 0.1, 7).select("image_id", "split").sort("image_id")
    b = assign_splits(frame.sample(fraction=1.0, shuffle=True, seed=3), 0.1, 0.1, 7).select("image_id", "split").sort("image_id")
    assert a.equals(b)


def test_drive_groups_keep_a_sequence_that_crosses_midnight_together():
    start = datetime(2024, 5, 1, 23, 59, 50, tzinfo=timezone.utc)
    frame = pl.DataFrame({
        "image_id": ["1", "2", "3", "4"],
        "sequence_id": ["s1", "s1", "s2", None],
        "creator_id": ["c", "c", "c", "c"],
        "captured_at": [start, start + timedelta(seconds=20), start + timedelta(hours=1), start],
    })
    groups = with_groups(frame, "drive")["group"].to_list()
    assert groups[0] == groups[1] == "c/2024-05-01"  # the sequence's first day
    assert groups[2] == "c/2024-05-02" and groups[3] == "c/2024-05-01"
    assert with_groups(frame, "sequence")["group"].to_list() == ["s1", "s1", "s2", "photo:4"]


def test_ratios_that_do_not_sum_to_one_are_refused(labelled, cfg):
    bad = cfg.model_copy(update={"split": cfg.split.model_copy(update={"val": 0.3})})
    with pytest.raises(UserError, match=r"sum to 1.2, not 1"):
        run_split(bad, labelled)


def test_split_without_cells_says_what_to_run(tmp_path, cfg):
    data = write(tmp_path, manifest_frame(5))
    with pytest.raises(UserError, match="geolocate cells"):
        run_split(cfg, data)


def test_a_class_without_photos_left_is_dropped_and_reported(labelled, cfg):
    cells = pl.read_parquet(labelled.cells)
    victim = cells["cell_id"][0]
    gone = pl.read_parquet(labelled.labels).filter(pl.col("cell_id") == victim)["image_id"]
    manifest = pl.read_parquet(labelled.manifest).filter(~pl.col("image_id").is_in(gone.implode()))
    write(labelled.root, manifest)
    report = run_split(cfg, labelled).report
    assert report["cells_dropped"] == [victim] and report["cells"] == cells.height - 1
    assert victim not in pl.read_parquet(labelled.cells)["cell_id"].to_list()
    assert victim not in pl.read_parquet(labelled.labels)["cell_id"].to_list()


def test_cli_split_prints_the_audit(cli, workdir):
    write(workdir / "data", manifest_frame(n_sequences=80, seed=5))
    assert cli("cells", "--profile", "tiny", "--set", "cells.min_samples=30").exit_code == 0
    result = cli("split", "--profile", "tiny", "--json")
    assert result.exit_code == 0, result.output
    assert "sequences shared" in result.stderr and pl.read_parquet("data/split.parquet").height > 0
    import json

    assert json.loads(result.stdout)["leakage"]["sequences_shared"] == 0


def test_cli_split_bad_ratios_in_one_line(cli, workdir):
    result = cli("split", "--set", "split.train=0.9", "--set", "split.val=0.2", "--set", "split.test=0.1")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "sum to" in lines[0]


def test_setting_one_share_rescales_the_others_in_proportion():
    split = load_config(None, None, ["split.test=0.2"]).split
    assert split.test == 0.2 and split.train + split.val + split.test == pytest.approx(1.0, abs=1e-6)
    assert split.train / split.val == pytest.approx(0.8 / 0.1, rel=1e-4)  # the defaults' proportions
    two = load_config(None, None, ["split.train=0.6", "split.val=0.3"]).split
    assert (two.train, two.val, two.test) == (0.6, 0.3, pytest.approx(0.1, abs=1e-6))


def test_shares_set_to_leave_nothing_are_one_line_naming_the_keys(cli, workdir):
    result = cli("split", "--set", "split.train=0.95", "--set", "split.val=0.1")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "leaves nothing for split.test" in lines[0] and "--set split.test=" in lines[0]


def test_labels_that_match_no_manifest_photo_are_refused_without_touching_cells(labelled, cfg):
    before = labelled.cells.read_bytes()
    other = manifest_frame(3).with_columns(image_id=pl.lit("9") + pl.col("image_id"))
    write(labelled.root, other.with_columns(path=pl.lit("raw/") + pl.col("image_id") + ".jpg"))  # guarded paths
    with pytest.raises(UserError, match="run `geolocate cells` again"):
        run_split(cfg, labelled)
    assert labelled.cells.read_bytes() == before


def test_cell_centroids_come_from_train_photos_only(labelled, cfg):
    """`cells` runs before `split`; a centroid averaging val and test photos leaks their positions."""
    from geolocate.manifest import read_manifest
    from geolocate.geo import haversine_km

    run_split(cfg, labelled)
    cells = pl.read_parquet(labelled.cells).sort("cell_id")
    photos = pl.read_parquet(labelled.split).join(pl.read_parquet(labelled.labels), on="image_id").join(
        read_manifest(labelled, columns=["image_id", "lat", "lon"]), on="image_id")
    train = photos.filter(pl.col("split") == "train").group_by("cell_id").agg(pl.col("lat").mean(), pl.col("lon").mean())
    allp = photos.group_by("cell_id").agg(pl.col("lat").mean(), pl.col("lon").mean())
    got = cells.join(train, on="cell_id").join(allp, on="cell_id", suffix="_all")
    to_train = haversine_km(got["centroid_lat"].to_numpy(), got["centroid_lon"].to_numpy(), got["lat"].to_numpy(), got["lon"].to_numpy())
    to_all = haversine_km(got["centroid_lat"].to_numpy(), got["centroid_lon"].to_numpy(), got["lat_all"].to_numpy(), got["lon_all"].to_numpy())
    assert to_train.max() < 0.05  # the spherical mean of a few km of photos is their plain mean within metres
    assert to_all.max() > 0.05  # and differs from the mean over every split (the old, leaking centroid)
