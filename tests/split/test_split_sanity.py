"""`geolocate sanity`: a clean data set passes; each kind of damage is caught and listed."""

from __future__ import annotations

import json

import polars as pl
import pytest
from manifest_factory import manifest_frame, write
from PIL import Image

from geolocate.cells import run_cells
from geolocate.config import load_config
from geolocate.split import run_split
from geolocate.split.sanity import run_sanity

OVERRIDES = ["cells.min_samples=20", "paths.data=data"]


def build(root, cfg):
    """A tiny data set with real (tiny) JPEGs, labelled and split."""
    data = write(root / "data", manifest_frame(n_sequences=40, per_sequence=8, seed=11))
    data.raw.mkdir(parents=True)
    for i, image_id in enumerate(pl.read_parquet(data.manifest)["image_id"]):
        Image.new("RGB", (16, 12), (i % 256, 80, 160)).save(data.raw_photo(image_id), quality=85)
    run_cells(cfg.cells, data)
    run_split(cfg, data)
    return data


@pytest.fixture
def cfg():
    return load_config(None, "tiny", OVERRIDES)


@pytest.fixture
def data(workdir, cfg):
    return build(workdir, cfg)


def failed(report) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if not c.ok}


def test_a_clean_data_set_passes_every_check(data, cfg):
    report = run_sanity(cfg, data)
    assert report.ok, report.violations
    assert {c.name for c in report.checks} == {
        "photos exist", "photos decode", "cell minimum", "labels", "split", "sequence leakage", "near duplicates",
        "dominance cap"}


def test_missing_and_corrupt_photos_are_listed(data, cfg):
    ids = pl.read_parquet(data.manifest)["image_id"].to_list()
    data.raw_photo(ids[0]).unlink()
    data.raw_photo(ids[1]).write_bytes(data.raw_photo(ids[1]).read_bytes()[:60])  # truncated JPEG
    data.raw_photo(ids[2]).write_bytes(b"not an image at all")
    problems = failed(run_sanity(cfg, data))
    assert set(problems) == {"photos exist", "photos decode"}
    assert problems["photos exist"].startswith("1 missing") and ids[0] in problems["photos exist"]
    assert problems["photos decode"].startswith("2 do not decode") and ids[1] in problems["photos decode"]
    assert set(failed(run_sanity(cfg, data, quick=True))) == {"photos exist"}  # --quick does not decode


def test_the_processed_copy_is_checked_when_there_is_one(data, cfg):
    manifest = pl.read_parquet(data.manifest)
    first = manifest["image_id"][0]
    write(data.root, manifest.with_columns(
        processed_path=pl.when(pl.col("image_id") == first).then(pl.lit(f"processed/{first}.jpg"))))
    assert "photos exist" in failed(run_sanity(cfg, data, quick=True))
    data.processed.mkdir()
    data.raw_photo(first).rename(data.processed_photo(first))
    assert run_sanity(cfg, data).ok


def test_sequence_leakage_is_caught(data, cfg):
    split = pl.read_parquet(data.split).join(pl.read_parquet(data.manifest), on="image_id")
    seq = split.filter(pl.col("split") == "test")["sequence_id"][0]
    one = split.filter(pl.col("sequence_id") == seq)["image_id"][0]
    leaked = pl.read_parquet(data.split).with_columns(
        split=pl.when(pl.col("image_id") == one).then(pl.lit("train")).otherwise(pl.col("split")))
    leaked.write_parquet(data.split)
    problems = failed(run_sanity(cfg, data, quick=True))
    assert "sequence leakage" in problems and problems["sequence leakage"].startswith("1 sequences")


def test_cell_minimum_dominance_and_label_consistency_are_checked(data, cfg):
    # Tables that do not meet the settings they were recorded with (as if edited by hand).
    settings = json.loads(data.stage_settings.read_text())
    settings["cells"]["cells.min_samples"], settings["split"]["cells.max_dominance"] = 10000, 0.01
    data.stage_settings.write_text(json.dumps(settings))
    problems = failed(run_sanity(cfg, data, quick=True))
    assert {"cell minimum", "dominance cap"} <= set(problems)
    assert "under 10000 photos" in problems["cell minimum"] and "above the 1% cap" in problems["dominance cap"]
    build_settings = json.loads(data.stage_settings.read_text())
    build_settings["cells"]["cells.min_samples"], build_settings["split"]["cells.max_dominance"] = 20, 0.25
    data.stage_settings.write_text(json.dumps(build_settings))
    labels = pl.read_parquet(data.labels)
    labels.with_columns(cell_id=pl.lit("8f2830828052d25")).head(3).vstack(labels.slice(3)).write_parquet(data.labels)
    problems = failed(run_sanity(cfg, data, quick=True))
    assert "labels" in problems and "not in cells.parquet" in problems["labels"]


def test_missing_tables_are_violations_that_say_what_to_run(workdir, cfg):
    data = write(workdir / "data", manifest_frame(n_sequences=3, per_sequence=2))
    problems = failed(run_sanity(cfg, data, quick=True))
    assert "geolocate cells" in problems["cells"]


def test_cli_sanity_exits_zero_when_clean_and_one_listing_every_violation(cli, data):
    ok = cli("sanity", "--profile", "tiny", *(a for o in OVERRIDES for a in ("--set", o)), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True
    ids = pl.read_parquet(data.manifest)["image_id"].to_list()
    data.raw_photo(ids[5]).unlink()
    bad = cli("sanity", "--profile", "tiny", "--json")  # judged by what cells recorded, not the tiny profile's 40
    assert bad.exit_code == 1
    error = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "1 violation(s)" in error[0] and "photos exist" in error[0]
    checks = {c["name"]: c for c in json.loads(bad.stdout)["checks"]}
    assert checks["cell minimum"]["ok"] and "(minimum 20, as `cells` ran)" in checks["cell minimum"]["detail"]


def test_a_given_setting_that_contradicts_a_recorded_one_is_one_line_naming_both(cli, data):
    """After `cells --set cells.min_samples=20`, `sanity --set cells.min_samples=150` is a contradiction."""
    result = cli("sanity", "--profile", "tiny", "--set", "cells.min_samples=150", "--set", "paths.data=data")
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code != 0 and len(error) == 1
    assert "cells.min_samples" in error[0] and "ran with 20" in error[0] and "gives 150" in error[0]
    agreeing = cli("sanity", "--profile", "tiny", "--set", "cells.min_samples=20", "--quick")
    assert agreeing.exit_code == 0, agreeing.output


def test_a_split_that_no_longer_matches_the_labels_is_caught(data, cfg):
    capped = json.loads(data.split_report.read_text())["dominance"]["downsampled_rows"]
    pl.read_parquet(data.split).slice(1).write_parquet(data.split)  # one labelled photo vanished
    problems = failed(run_sanity(cfg, data, quick=True))
    assert set(problems) == {"split"}
    assert f"{capped + 1} labelled photos not in the split but the report left out {capped}" in problems["split"]


def test_near_duplicates_above_the_threshold_fail_with_the_count_and_the_fix(data, cfg):
    """Captures imported one sequence each (no group column) put a street's neighbours in train and test."""
    manifest = pl.read_parquet(data.manifest)
    write(data.root, manifest.with_columns(sequence_id=pl.lit("import:") + pl.col("image_id")))
    run_split(cfg, data)
    share = json.loads(data.split_report.read_text())["leakage"]["near_duplicates"]["share"]
    assert share > 0.2  # photos 8 m apart: most test photos have a train neighbour
    problems = failed(run_sanity(cfg, data))
    assert set(problems) == {"near duplicates"}
    assert f"{share:.1%}" in problems["near duplicates"] and "group" in problems["near duplicates"]
    relaxed = load_config(None, "tiny", [*OVERRIDES, "split.max_near_share=1.0"])
    assert run_sanity(relaxed, data).ok, run_sanity(relaxed, data).violations
    assert "split.buffer=true" in problems["near duplicates"]
    buffered = load_config(None, "tiny", [*OVERRIDES, "split.buffer=true"])
    run_split(buffered, data)
    report = json.loads(data.split_report.read_text())
    assert report["buffer_dropped"] > 0 and report["leakage"]["near_duplicates"]["with_train_neighbour"] == 0
    assert run_sanity(buffered, data).ok, run_sanity(buffered, data).violations
