"""run_synth: reproducible bytes, the manifest schema, replacing an earlier set, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from geolocate.manifest import merge_manifest, read_manifest
from geolocate.config import SynthConfig
from geolocate.paths import DataPaths
from geolocate.schemas import MANIFEST
from geolocate.synth import generate, run_synth
from geolocate.synth.generate import resolve_settings
from geolocate.errors import UserError

SMALL = dict(n_photos=40, size=48, batches=["01"], photos_per_sequence=6, sequences_per_drive=2)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path, monkeypatch):
    run_synth(SynthConfig(**SMALL), DataPaths(tmp_path / "a"), workers=1)
    monkeypatch.setattr(generate, "_INLINE_BELOW", 0)  # force the process pool on a small set
    run_synth(SynthConfig(**SMALL), DataPaths(tmp_path / "b"), workers=2)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(first) == 41 and first == second  # 40 photos + the manifest, byte for byte


def test_another_seed_gives_other_photos(tmp_path):
    run_synth(SynthConfig(**SMALL), DataPaths(tmp_path / "a"), workers=1)
    run_synth(SynthConfig(**{**SMALL, "seed": 1}), DataPaths(tmp_path / "b"), workers=1)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sum(a[k] != b[k] for k in a if k.startswith("raw/")) == 40


def test_manifest_rows_follow_the_schema_and_describe_the_files(tmp_path):
    data = DataPaths(tmp_path)
    report = run_synth(SynthConfig(**SMALL), data, workers=1)
    manifest = pl.read_parquet(data.manifest)
    assert manifest.schema == pl.Schema(MANIFEST) and manifest.height == report.photos == 40
    assert manifest["image_id"].n_unique() == 40 and (manifest["source"] == "synthetic").all()
    assert manifest["processed_path"].is_null().all() and not manifest["is_pano"].any()
    for row in manifest.iter_rows(named=True):
        assert row["path"] == f"raw/{row['image_id']}.jpg"
        path = data.root / row["path"]
        assert path.stat().st_size == row["bytes"]
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (row["width"], row["height"]) == (48, 48)
        assert row["captured_at"].tzinfo is not None and 0 <= row["compass_angle"] < 360


def test_a_smaller_rerun_replaces_the_synthetic_rows_and_keeps_fetched_ones(tmp_path):
    data = DataPaths(tmp_path)
    fetched = pl.DataFrame({"image_id": ["123"], "source": ["mapillary"], "lat": [48.0], "lon": [2.0],
                            "fetched_at": [datetime(2026, 1, 1, tzinfo=timezone.utc)]})
    merge_manifest(data, fetched)
    run_synth(SynthConfig(**SMALL), data, workers=1)
    data.processed.mkdir()
    stale_id = read_manifest(data).filter(pl.col("source") == "synthetic")["image_id"].max()
    data.processed_photo(stale_id).write_bytes(b"old copy")
    report = run_synth(SynthConfig(**{**SMALL, "n_photos": 20}), data, workers=1)
    manifest = read_manifest(data)
    assert report.removed == 20 and manifest.height == 21 and "123" in manifest["image_id"].to_list()
    assert len(list(data.raw.glob("*.jpg"))) == 20 and not data.processed_photo(stale_id).exists()


def test_multiview_rows_carry_cardinal_compass_angles(tmp_path):
    data = DataPaths(tmp_path)
    report = run_synth(SynthConfig(**{**SMALL, "n_photos": 48, "multiview": True, "photos_per_sequence": 8}), data, workers=1)
    manifest = read_manifest(data)
    nearest = ((manifest["compass_angle"] / 90).round() * 90) % 360
    gap = ((manifest["compass_angle"] - nearest + 180) % 360 - 180).abs()
    assert report.locations == 12 and 40 <= manifest.height <= 48 and gap.max() < 12
    assert set(nearest.to_list()) == {0.0, 90.0, 180.0, 270.0}


def test_settings_overrides_are_validated():
    cfg = resolve_settings(SynthConfig(), n_photos=50, size=None, batches=["03"])
    assert cfg.n_photos == 50 and cfg.size == SynthConfig().size and cfg.batches == ["03"]
    with pytest.raises(UserError, match="size"):
        resolve_settings(SynthConfig(), size=8)


def test_cli_synth_then_prepare(cli, workdir):
    result = cli("synth", "--profile", "tiny", "--n", "30", "--size", "48", "--seed", "2", "--batch", "02", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["photos"] == 30 and set(summary["cities"]) <= {a for a in ("Marseille", "Nantes", "Angers", "Clermont-Ferrand", "Aurillac")}
    assert len(list((workdir / "data" / "raw").glob("*.jpg"))) == 30
    prepared = json.loads(cli("prepare", "--profile", "tiny", "--json").stdout)
    assert prepared["processed"] == 30 and prepared["failed"] == 0
    assert json.loads(cli("prepare", "--profile", "tiny", "--json").stdout)["processed"] == 0


@pytest.mark.parametrize("args, words", [(("--batch", "99"), "batch"), (("--size", "8"), "size")])
def test_cli_synth_mistakes_are_one_line(cli, workdir, args, words):
    result = cli("synth", "--n", "10", *args)
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and words in lines[0] and "Traceback" not in result.output


def test_synth_and_prepare_commands_do_not_import_torch(tmp_path):
    code = (
        "import sys; from typer.testing import CliRunner; from geolocate.cli import app\n"
        "r = CliRunner().invoke(app, ['synth', '--n', '10', '--size', '32']); assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['prepare']); assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout


def test_the_us_catalog_draws_us_areas(tmp_path):
    """The scout-sniper profiles fetch from the US catalog; their synthetic twin must draw there too."""
    from geolocate.acquire.catalog import batch_areas
    from geolocate.config import load_config

    assert load_config(None, "tiny-scout-sniper").fetch.catalog == "us"
    report = run_synth(SynthConfig(**SMALL), DataPaths(tmp_path / "us"), workers=1, catalog="us")
    us = {a.name for a in batch_areas("01", "us")}
    assert set(report.cities) <= us and set(report.cities).isdisjoint({a.name for a in batch_areas("01", "fr")})
