"""`geolocate clean-raw`: only raw downloads go, only when their processed copy exists."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from geolocate.errors import UserError
from geolocate.ops.clean_raw import run_clean_raw
from geolocate.paths import DataPaths


@pytest.fixture
def data(synth_data, workdir):
    shutil.copytree(synth_data, workdir / "data")
    return DataPaths(workdir / "data")


def test_a_raw_photo_without_processed_copy_blocks_everything_unless_forced(data, cli):
    victim = sorted(data.processed.glob("*.jpg"))[3]
    victim.unlink()
    raw_before = sorted(data.raw.iterdir())
    refused = cli("clean-raw")
    assert refused.exit_code == 2
    message = " ".join(refused.stderr.split())
    assert f"1 raw photos have no processed copy ({victim.stem})" in message and "geolocate prepare" in message
    assert sorted(data.raw.iterdir()) == raw_before  # nothing deleted

    dry = json.loads(cli("clean-raw", "--dry-run", "--json").stdout)
    assert dry["blocked"] == [victim.stem] and dry["files"] == len(raw_before) - 1

    forced = cli("clean-raw", "--force", "--json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["forced"] == [victim.stem]
    assert list(data.raw.iterdir()) == []


def test_only_files_geolocate_wrote_in_raw_are_deleted(data):
    leftover = data.raw / ".123.jpg.abcd.tmp"  # what a killed atomic write leaves
    leftover.write_bytes(b"half a photo")
    foreign = data.raw / "notes.txt"
    foreign.write_text("mine")
    (data.raw / "sub").mkdir()
    outside = data.root.parent / "keep.jpg"
    outside.write_bytes(b"x")
    (data.raw / "999.jpg").symlink_to(outside)
    report = run_clean_raw(data)
    assert leftover in report.files and not leftover.exists()
    assert foreign.is_file() and (data.raw / "sub").is_dir() and outside.is_file()
    assert sorted(p.name for p in data.raw.iterdir()) == ["999.jpg", "notes.txt", "sub"]


def test_manifest_keeps_every_row_and_clears_path(data):
    before = pl.read_parquet(data.manifest)
    report = run_clean_raw(data)
    after = pl.read_parquet(data.manifest)
    assert after["image_id"].to_list() == before["image_id"].to_list()
    assert report.manifest_rows == before.height and after["path"].null_count() == before.height
    assert after.drop("path").equals(before.drop("path"))
    assert all((data.root / p).is_file() for p in after["processed_path"])


def test_a_second_run_finds_nothing_to_do(data):
    first = run_clean_raw(data)
    again = run_clean_raw(data)
    assert first.files and again.files == [] and again.bytes == 0 and again.manifest_rows == 0


def test_nothing_to_clean_without_a_data_directory(workdir):
    report = run_clean_raw(DataPaths(workdir / "data"))
    assert report.files == [] and report.manifest_rows == 0


def test_forced_delete_refuses_nothing_but_dry_run_changes_nothing(data):
    before = sorted(data.raw.iterdir())
    report = run_clean_raw(data, dry_run=True)
    assert report.dry_run and len(report.files) == len(before) and sorted(data.raw.iterdir()) == before
    assert pl.read_parquet(data.manifest)["path"].null_count() == 0


def test_locked_by_a_live_holder_is_refused(data, monkeypatch):
    import socket

    from geolocate import lock

    data.lock.write_text(json.dumps({"pid": 1, "hostname": socket.gethostname(), "command": "geolocate fetch", "started": "now"}))
    with pytest.raises(UserError, match="is locked by pid 1"):
        run_clean_raw(data)
    assert lock.read_lock(data.lock).pid == 1
