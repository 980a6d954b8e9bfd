"""run_prepare: sizes, incremental re-runs, missing and corrupt raw files, EXIF orientation."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest
from PIL import Image

from geolocate.acquire import prepare as prepare_module
from geolocate.manifest import merge_manifest, read_manifest
from geolocate.acquire.prepare import run_prepare
from geolocate.config import DataConfig, SynthConfig
from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.synth import run_synth


@pytest.fixture
def data(tmp_path) -> DataPaths:
    paths = DataPaths(tmp_path / "data")
    run_synth(SynthConfig(n_photos=24, size=96, batches=["01"]), paths, workers=1)
    return paths


def _row(image_id: str, **extra) -> dict:
    return {"image_id": image_id, "source": "mapillary", "path": f"raw/{image_id}.jpg", "lat": 48.0, "lon": 2.0,
            "fetched_at": datetime(2026, 1, 1, tzinfo=timezone.utc), **extra}


def test_every_photo_gets_a_copy_no_larger_than_max_size(data):
    report = run_prepare(DataConfig(max_size=64, jpeg_quality=80), data, workers=1)
    manifest = read_manifest(data)
    assert report.processed == manifest.height == 24 and not report.failed
    for row in manifest.iter_rows(named=True):
        assert row["processed_path"] == f"processed/{row['image_id']}.jpg"
        with Image.open(data.root / row["processed_path"]) as image:
            assert image.mode == "RGB" and image.format == "JPEG" and max(image.size) == 64


def test_second_run_processes_nothing_and_a_lost_copy_is_redone(data):
    cfg = DataConfig(max_size=64)
    run_prepare(cfg, data, workers=1)
    assert run_prepare(cfg, data, workers=1).processed == 0
    lost = read_manifest(data)["image_id"][3]
    data.processed_photo(lost).unlink()
    again = run_prepare(cfg, data, workers=1)
    assert again.processed == 1 and again.already_done == 23 and data.processed_photo(lost).exists()


def test_the_pool_gives_the_same_copies(data, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "_INLINE_BELOW", 0)
    run_prepare(DataConfig(max_size=64), data, workers=2)
    pooled = {p.name: p.read_bytes() for p in data.processed.iterdir()}
    for p in data.processed.iterdir():
        p.unlink()
    run_prepare(DataConfig(max_size=64), data, workers=1)
    assert pooled == {p.name: p.read_bytes() for p in data.processed.iterdir()} and len(pooled) == 24


def test_missing_and_corrupt_raw_files_are_reported_not_fatal(data):
    ids = read_manifest(data)["image_id"].to_list()
    data.raw_photo(ids[0]).unlink()
    data.raw_photo(ids[1]).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    truncated = data.raw_photo(ids[2]).read_bytes()
    data.raw_photo(ids[2]).write_bytes(truncated[: len(truncated) // 2])
    report = run_prepare(DataConfig(max_size=64), data, workers=1)
    assert sorted(report.failed) == sorted(ids[:3]) and report.processed == 21
    assert "missing" in report.failed[ids[0]] and "undecodable" in report.failed[ids[1]]
    assert report.to_dict()["failed"] == 3 and report.to_dict()["failed_ids"] == sorted(ids[:3])
    manifest = read_manifest(data).filter(pl.col("image_id").is_in(ids[:3]))
    assert manifest["processed_path"].is_null().all() and not any(data.processed_photo(i).exists() for i in ids[:3])
    assert sorted(run_prepare(DataConfig(max_size=64), data, workers=1).failed) == sorted(ids[:3])  # retried


def test_exif_orientation_is_applied_and_unknown_sizes_are_filled(tmp_path):
    data = DataPaths(tmp_path)
    data.raw.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90° (portrait)
    Image.new("L", (200, 100), 128).save(data.raw_photo("42"), format="JPEG", exif=exif.tobytes())
    merge_manifest(data, pl.DataFrame([_row("42")]))
    report = run_prepare(DataConfig(max_size=64), data, workers=1)
    row = read_manifest(data).row(0, named=True)
    with Image.open(data.processed_photo("42")) as image:
        assert image.size == (32, 64) and image.mode == "RGB"
    assert report.processed == 1 and (row["width"], row["height"]) == (200, 100)
    assert row["bytes"] == data.raw_photo("42").stat().st_size


def test_large_photos_are_downscaled_and_small_ones_never_enlarged(tmp_path):
    data = DataPaths(tmp_path)
    data.raw.mkdir(parents=True)
    Image.new("RGB", (2048, 1536), (10, 200, 30)).save(data.raw_photo("1"), format="JPEG")
    Image.new("RGB", (40, 30), (10, 200, 30)).save(data.raw_photo("2"), format="JPEG")
    merge_manifest(data, pl.DataFrame([_row("1"), _row("2")]))
    run_prepare(DataConfig(max_size=512), data, workers=1)
    assert Image.open(data.processed_photo("1")).size == (512, 384)
    assert Image.open(data.processed_photo("2")).size == (40, 30)


def test_no_manifest_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="geolocate fetch"):
        run_prepare(DataConfig(), DataPaths(tmp_path))
