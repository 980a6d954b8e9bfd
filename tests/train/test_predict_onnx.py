"""The exported graph: parity with torch, predict without torch, same answers, GeoJSON, radius, release."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

pytestmark = pytest.mark.slow


def _test_photos(root, n=12):
    split = pl.read_parquet(root / "data/split.parquet").filter(pl.col("split") == "test").sort("image_id").head(n)
    rows = split.join(pl.read_parquet(root / "data/manifest.parquet"), on="image_id").sort("image_id").to_dicts()
    return [root / "data" / r["processed_path"] for r in rows], rows


@pytest.fixture(scope="module")
def exported(tiny_trained, tmp_path_factory):
    """A copy of the tiny run's best checkpoint (and index) with its ONNX graph exported."""
    from geolocate.artifacts.onnx_export import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    for src in tiny_trained["run_dir"].glob("best.*"):
        shutil.copyfile(src, folder / src.name)
    record = export_onnx(folder / "best")
    return {"stem": folder / "best", "record": record, **tiny_trained}


def test_export_records_parity_in_the_sidecar(exported):
    record, stem = exported["record"], exported["stem"]
    sidecar = json.loads(stem.with_suffix(".json").read_text())
    assert sidecar["onnx"] == record and record["weights_id"] == sidecar["weights_id"]
    parity = record["parity"]
    assert parity["passed"] and parity["topk_identical"] and parity["max_abs_logit_diff"] <= 1e-4
    assert (stem.parent / "best.onnx").stat().st_size == record["bytes"]


def test_both_engines_give_the_same_top5(exported, cli, in_project):
    root = in_project(exported["root"])
    photos, _ = _test_photos(root)
    answers = {}
    for engine in ("onnx", "torch"):
        result = cli("predict", *photos, "--checkpoint", exported["stem"], "--engine", engine, "--json", "--top", "5")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["model"]["engine"] == engine
        answers[engine] = data["predictions"]
    for a, b in zip(answers["onnx"], answers["torch"]):
        assert [c["cell_id"] for c in a["top"]] == [c["cell_id"] for c in b["top"]]
        assert np.allclose([c["prob"] for c in a["top"]], [c["prob"] for c in b["top"]], atol=1e-4)
        assert a["radius_km"] == pytest.approx(b["radius_km"]) and a["position"] == b["position"]


def test_onnx_path_never_imports_torch(exported, in_project):
    root = in_project(exported["root"])
    photos, _ = _test_photos(root, 1)
    code = ("import sys; from typer.testing import CliRunner; from geolocate.cli import app; "
            f"r = CliRunner().invoke(app, ['predict', {str(photos[0])!r}, '--checkpoint', {str(exported['stem'])!r}, '--json']); "
            "heavy = sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules); "
            "print(r.exit_code, heavy, r.stdout.count('\"engine\": \"onnx\"'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "[]", "1"], out.stdout + out.stderr


def test_geojson_radius_and_provenance(exported, cli, in_project, tmp_path):
    root = in_project(exported["root"])
    photos, rows = _test_photos(root, 1)
    target = tmp_path / "p.geojson"
    result = cli("predict", photos[0], "--checkpoint", exported["stem"], "--lat", rows[0]["lat"], "--lon", rows[0]["lon"],
                 "--geojson", target, "--top", "3")
    assert result.exit_code == 0, result.output
    assert "synthetic photos" in result.stderr and exported["run_id"] in result.stderr
    doc = json.loads(target.read_text())
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert kinds[:3] == ["cell"] * 3 and "prediction" in kinds and "truth" in kinds and "credible_circle" in kinds
    for feature in doc["features"]:
        geometry = feature["geometry"]
        rings = geometry["coordinates"] if geometry["type"] == "Polygon" else [[geometry["coordinates"]]]
        for ring in rings:
            assert geometry["type"] == "Point" or ring[0] == ring[-1]
            assert all(-6 < lon < 10 and 41 < lat < 52 for lon, lat in ring)  # France, as [lon, lat]
    assert doc["properties"]["model"]["synthetic"] is True


def test_evaluate_wrote_radius_retrieval_and_error_map(tiny_trained):
    run_dir = tiny_trained["run_dir"]
    sidecar = json.loads((run_dir / "best.json").read_text())
    radius = sidecar["radius"]
    assert radius["level"] == 0.9 and all(r is None or r > 0 for r in radius["radius_km"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    coverage = metrics["radius"]["test"]["coverage"]
    assert 0 <= coverage <= 1
    assert set(metrics["retrieval"]["test"]["median_km"]) == {"classifier", "retrieval"}
    assert (run_dir / "best.index.safetensors").is_file() == sidecar["retrieval"]["enabled"]
    report = (run_dir / "REPORT.md").read_text()
    assert "## Credible radius" in report and "## Retrieval refinement" in report
    assert (run_dir / "error_map.png").stat().st_size > 1000


def test_freeze_ships_the_graph(tiny_trained, cli, in_project, tmp_path, monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(tiny_trained["root"], project, symlinks=True)
    in_project(project)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    result = cli("freeze", "--tag", "t1", "--run", tiny_trained["run_id"], "--force")
    assert result.exit_code == 0, result.output
    release = project / "releases" / "t1"
    record = json.loads((release / "RELEASE.json").read_text())
    assert (release / "model.onnx").is_file() and record["onnx"]["parity"]["passed"]
    assert "model.onnx" in (release / "SHA256SUMS").read_text()
    photos, _ = _test_photos(project, 2)
    out = cli("predict", *photos, "--checkpoint", release, "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["model"]["engine"] == "onnx"
