"""Guards of the split stage: hostile manifests, empty val/test, one violations → error path."""

from __future__ import annotations

import polars as pl
import pytest
from manifest_factory import manifest_frame, write

from geolocate.manifest import read_manifest
from geolocate.cells import run_cells
from geolocate.config import load_config
from geolocate.errors import UserError
from geolocate.split import run_split
from geolocate.split.sanity import SanityReport, run_sanity

HOSTILE_PROCESSED = ["/etc/hostname", "../../../etc/passwd", "processed/../../../etc/passwd"]


def _labelled_and_split(workdir, cfg):
    data = write(workdir / "data", manifest_frame(n_sequences=80, seed=5))
    run_cells(cfg.cells, data)
    run_split(cfg, data)
    return data


@pytest.mark.parametrize("hostile", HOSTILE_PROCESSED)
def test_sanity_refuses_a_hostile_manifest_without_opening_anything(workdir, cfg, cli, monkeypatch, hostile):
    data = _labelled_and_split(workdir, cfg)
    manifest = pl.read_parquet(data.manifest)
    victim = manifest["image_id"][0]
    write(data.root, manifest.with_columns(processed_path=pl.when(pl.col("image_id") == victim).then(pl.lit(hostile))))
    opened = []
    monkeypatch.setattr("geolocate.split.sanity.check_photos", lambda *a, **k: opened.append(a))  # the photo reader
    result = cli("sanity", "--profile", "tiny", "--set", "cells.min_samples=30")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())  # one line, which rich may wrap at the terminal width
    assert message.startswith("error:") and message.count("error:") == 1 and "Traceback" not in message
    assert "could leave" in message and repr(victim) in message
    assert opened == []  # refused before any photo path was looked at
    for stage in (lambda: run_cells(cfg.cells, data), lambda: run_split(cfg, data)):
        with pytest.raises(UserError, match="could leave"):
            stage()


def test_a_column_subset_is_still_guarded_and_version_checked(workdir, cfg):
    data = write(workdir / "data", manifest_frame(n_sequences=4, seed=1))
    frame = read_manifest(data, columns=["lat", "lon"])
    assert frame.columns == ["lat", "lon"] and frame.height == pl.read_parquet(data.manifest).height
    manifest = pl.read_parquet(data.manifest)
    manifest.with_columns(path=pl.lit("/etc/passwd")).write_parquet(data.manifest)  # hand-written, unversioned
    with pytest.raises(UserError, match="could leave"):
        read_manifest(data, columns=["lat"])
    manifest.write_parquet(data.manifest, metadata={"geolocate.manifest_version": "99"})
    with pytest.raises(UserError, match="manifest format 99"):
        read_manifest(data, columns=["lat"])


def test_no_manifest_is_a_user_error_for_cells_split_and_sanity(workdir, cfg):
    data = write(workdir / "data", manifest_frame(n_sequences=2, seed=1))
    data.manifest.unlink()
    for stage in (lambda: run_cells(cfg.cells, data), lambda: run_sanity(cfg, data)):
        with pytest.raises(UserError, match="no manifest"):
            stage()
    assert read_manifest(data, columns=["lat"]).columns == ["lat"]  # not required: empty frame


def test_an_empty_split_is_a_violation(workdir, cfg):
    data = _labelled_and_split(workdir, cfg)
    split = pl.read_parquet(data.split)
    split.with_columns(split=pl.when(pl.col("split") == "val").then(pl.lit("test")).otherwise(pl.col("split"))) \
        .write_parquet(data.split)
    problems = [v for v in run_sanity(cfg, data, quick=True).violations if v.startswith("split:")]
    assert len(problems) == 1 and "val empty" in problems[0], problems


@pytest.mark.parametrize("key", ["split.val", "split.test"])
def test_a_zero_val_or_test_share_is_refused(workdir, cli, key):
    with pytest.raises(UserError, match="evaluation needs val and test"):
        load_config(None, "tiny", [f"{key}=0", "split.train=0.9"])
    result = cli("split", "--profile", "tiny", "--set", f"{key}=0", "--set", "split.train=0.9")
    assert result.exit_code == 2 and "evaluation needs val and test" in " ".join(result.stderr.split())


def test_raise_for_violations_lists_every_violation_with_exit_code_1():
    report = SanityReport()
    report.add("fine", [], "all good")
    report.raise_for_violations()  # nothing to raise
    report.add("split", ["val empty"], "")
    report.add("photos exist", ["2 missing"], "")
    with pytest.raises(UserError) as caught:
        report.raise_for_violations("sanity failed: ")
    assert caught.value.exit_code == 1
    assert str(caught.value) == "sanity failed: 2 violation(s): split: val empty | photos exist: 2 missing"
