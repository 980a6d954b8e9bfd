"""`geolocate import`: EXIF positions, skip reasons, idempotence, CSV positions, sequences, real photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geolocate.acquire import local
from geolocate.acquire.local import HEIF_HINT, run_import
from geolocate.config import LocalConfig
from geolocate.manifest import read_manifest
from geolocate.paths import DataPaths
from tests.sources.photo_factory import geotagged

# The shared real photos (`../shared/real-photos/exif` of the checkout, or of any folder above it).
REAL = next((p / "shared/real-photos/exif" for p in Path(__file__).resolve().parents if (p / "shared/real-photos/exif").is_dir()),
            Path("shared/real-photos/exif"))


def _folder(root: Path) -> Path:
    photos = root / "photos"
    for i in range(3):  # one walk: same camera, 10 s and ~15 m apart
        geotagged(photos / f"walk/{i}.jpg", 48.8500 + i * 0.00013, 2.3500, when=f"2024:05:01 10:00:{10 * i:02d}", heading=90.0, seed=i)
    geotagged(photos / "far.jpg", 45.75, 4.85, seed=10, artist="Ann", copyright="CC-BY-4.0")
    geotagged(photos / "bad/none.jpg", None, None, seed=11)
    geotagged(photos / "bad/nan.jpg", float("nan"), float("nan"), seed=12)
    geotagged(photos / "bad/zero.jpg", 0.0, 0.0, seed=13)
    (photos / "bad/text.jpg").write_text("not a photo")
    return photos


def test_import_reads_exif_skips_with_reasons_and_is_idempotent(tmp_path):
    data = DataPaths(tmp_path / "data")
    report = run_import(LocalConfig(), data, [_folder(tmp_path)], license="CC0-1.0")
    assert len(report.imported) == 4 and report.already == 0
    reasons = {Path(k).name: v for k, v in report.skipped.items()}
    assert reasons == {"none.jpg": "no GPS position in EXIF", "nan.jpg": "GPS position is NaN",
                       "zero.jpg": "GPS position is 0,0 (no fix)", "text.jpg": "not an image"}
    manifest = read_manifest(data).sort("lat")
    assert manifest["source"].unique().to_list() == ["local"]
    assert all(i.startswith("local:") and data.raw_photo(i).is_file() for i in manifest["image_id"])
    walk = manifest.filter(manifest["lat"] > 48)
    assert walk["sequence_id"].n_unique() == 1 and walk["compass_angle"].to_list() == [90.0] * 3
    assert abs(walk["lat"][0] - 48.85) < 1e-6 and walk["captured_at"][1].second == 10
    far = manifest.filter(manifest["lat"] < 48).row(0, named=True)
    assert far["sequence_id"] != walk["sequence_id"][0] and far["license"] == "CC-BY-4.0" and far["creator_username"] == "Ann"
    assert walk["license"].to_list() == ["CC0-1.0"] * 3
    again = run_import(LocalConfig(), data, [tmp_path / "photos"])
    assert again.imported == [] and again.already == 4 and read_manifest(data).height == 4


def test_import_takes_positions_from_a_csv(tmp_path):
    photos = tmp_path / "csv"
    geotagged(photos / "a.jpg", None, None, seed=1)
    geotagged(photos / "b.jpg", None, None, seed=2)
    (photos / "positions.csv").write_text("file,lat,lon,heading,captured_at,sequence_id\n"
                                          "a.jpg,43.3,5.4,180,2024-06-01T10:00:00Z,drive-1\nb.jpg,91,5.4,,,\n")
    data = DataPaths(tmp_path / "data")
    report = run_import(LocalConfig(), data, [photos / "positions.csv"])
    assert list(report.skipped.values()) == ["GPS position out of range"]
    row = read_manifest(data).row(0, named=True)
    assert (row["lat"], row["lon"], row["compass_angle"], row["sequence_id"]) == (43.3, 5.4, 180.0, "drive-1")


def test_heic_without_pillow_heif_is_a_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "_heif_available", lambda: False)
    (tmp_path / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    report = run_import(LocalConfig(), DataPaths(tmp_path / "data"), [tmp_path])
    assert list(report.skipped.values()) == [HEIF_HINT]


def test_cli_import_prints_counts_and_one_line_errors(cli, workdir):
    _folder(workdir)
    result = cli("import", "photos", "--json")
    counts = json.loads(result.stdout)["counts"]
    assert result.exit_code == 0 and counts["imported"] == 4 and counts["skipped: GPS position is NaN"] == 1
    assert "skipped" in result.stderr and "nan.jpg: GPS position is NaN" in result.stderr
    (workdir / "bad.csv").write_text("file,lat\nx.jpg,1\n")
    bad = cli("import", "bad.csv")
    assert bad.exit_code != 0 and "missing column(s) lon" in bad.output and "Traceback" not in bad.output
    missing = cli("import", "nowhere")
    assert missing.exit_code != 0 and "nowhere: no such file or folder" in missing.output


@pytest.mark.skipif(not REAL.is_dir(), reason="the shared real photos are not on this machine")
def test_real_photos_import_46_and_skip_2(tmp_path):
    data = DataPaths(tmp_path / "data")
    report = run_import(LocalConfig(), data, [REAL])
    assert len(report.imported) == 46
    assert {Path(k).name: v for k, v in report.skipped.items()} == {"e1_without_exif.jpg": "no EXIF", "invalid_exif.jpg": "GPS position is NaN"}
    manifest = read_manifest(data)
    gopro = manifest.filter(manifest["creator_username"].is_null() & manifest["is_pano"] & manifest["lat"].is_between(48.9, 49.1))
    assert gopro.height == 5 and gopro["sequence_id"].n_unique() == 1  # the 360° sequence, 2 s apart
    lund = manifest.filter(manifest["lat"] > 55.6)
    assert lund.height == 29 and lund["sequence_id"].n_unique() == 1  # no timestamps: a 150 m walk by distance
    assert run_import(LocalConfig(), data, [REAL]).imported == []


@pytest.mark.skipif(not REAL.is_dir(), reason="the shared real photos are not on this machine")
def test_real_photos_through_prepare_cells_split_sanity_and_locations(cli, workdir):
    assert cli("import", str(REAL)).exit_code == 0
    assert cli("prepare", "--set", "data.max_size=64").exit_code == 0
    manifest = read_manifest(DataPaths(workdir / "data"))
    panos = manifest.filter(manifest["is_pano"])
    views = manifest.filter(manifest["parent_id"].is_not_null())
    assert panos.height == 6 and views.height == 24  # 5 GoPro captures + one phone photosphere, 4 views each
    small = ["--set", "cells.min_samples=1", "--set", "split.train=0.5", "--set", "split.val=0.25", "--set", "split.test=0.25"]
    for step in (["cells", "--res", "3"], ["split"], ["sanity"]):
        result = cli(*step, *small)
        assert result.exit_code == 0, (step, result.output)
    located = cli("locations", "--json")
    assert json.loads(located.stdout)["4 views"] == 5  # each GoPro capture (with a heading) is one four-view location
