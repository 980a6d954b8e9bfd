"""Test-time views end to end on the tiny trained run: val decides, predict (torch, ONNX, the API, a
release) follows the sidecar, and `eval.tta = off` never cuts a view."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import polars as pl
import pytest

from geolocate.data.tta import n_views
from tests.fakes.models import count_forward_rows

pytestmark = pytest.mark.slow


def _test_photos(root, n=3):
    split = pl.read_parquet(root / "data/split.parquet").filter(pl.col("split") == "test").sort("image_id").head(n)
    rows = split.join(pl.read_parquet(root / "data/manifest.parquet"), on="image_id").sort("image_id").to_dicts()
    return [root / "data" / r["processed_path"] for r in rows]


def _set_tta(stem, enabled: bool) -> None:
    from geolocate.artifacts.checkpoint import update_sidecar

    update_sidecar(stem, lambda sidecar: sidecar.update(tta={**sidecar["tta"], "enabled": enabled}))


def test_evaluate_records_what_val_chose(tiny_trained):
    """auto: both sides scored on val, the better kept, the same record in the sidecar, metrics.json and REPORT.md."""
    run_dir = tiny_trained["run_dir"]
    tta = json.loads((run_dir / "best.json").read_text())["tta"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["tta"] == tta and tta["setting"] == "auto" and tta["crops"] == 3
    scores = {side: tta["val"][side]["score"] for side in ("plain", "tta")}
    assert tta["enabled"] is (scores["tta"] < scores["plain"])
    assert tta["views"] == (n_views(3) if tta["enabled"] else 1)
    chosen = tta["val"]["tta" if tta["enabled"] else "plain"]  # val's classifier positions are the chosen side's
    assert metrics["retrieval"]["val"]["median_km"]["classifier"] == pytest.approx(chosen["median_km"])
    assert "Test-time augmentation: **" in (run_dir / "REPORT.md").read_text()


@pytest.mark.parametrize("enabled", [True, False])
def test_predict_follows_the_sidecar_on_both_engines_and_the_api(exported, tiny_trained, monkeypatch, enabled):
    from geolocate import Geolocator
    from geolocate.inference.onnx_predictor import OnnxPredictor
    from geolocate.inference.predictor import Predictor

    _set_tta(exported, enabled)
    photos = _test_photos(tiny_trained["root"], 3)
    views = n_views(3) if enabled else 1
    answers = {}
    for engine, cls in (("onnx", OnnxPredictor), ("torch", Predictor)):
        rows = count_forward_rows(monkeypatch, cls)
        g = Geolocator.load(exported.with_suffix(".safetensors"), engine=engine)
        answers[engine] = g.predict_many(photos, top=5).results
        assert g.engine == engine and rows == [3 * views]
    for a, b in zip(answers["onnx"], answers["torch"]):
        assert [c["cell_id"] for c in a.top] == [c["cell_id"] for c in b.top]
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_the_onnx_path_with_views_never_imports_torch(exported, tiny_trained):
    _set_tta(exported, True)
    photo = _test_photos(tiny_trained["root"], 1)[0]
    code = ("import sys; from typer.testing import CliRunner; from geolocate.cli import app; "
            f"r = CliRunner().invoke(app, ['predict', {str(photo)!r}, '--checkpoint', {str(exported)!r}, '--json']); "
            "heavy = sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules); "
            "print(r.exit_code, heavy, r.stdout.count('\"engine\": \"onnx\"'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tiny_trained["root"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "[]", "1"], out.stdout + out.stderr


def test_a_release_keeps_the_record_and_eval_tta_off_never_cuts_a_view(tiny_trained, tmp_path, in_project, monkeypatch, cli):
    """Frozen with the views on, the release's sidecar keeps the record, its checks pass and its graph takes
    6 rows a photo. Evaluated again with eval.tta = off: no views loader, and the sidecar says off."""
    import geolocate.evaluate.tta as tta
    from geolocate.evaluate.run import run_evaluate
    from geolocate.inference.onnx_predictor import OnnxPredictor
    from geolocate.paths import ProjectPaths
    from tests.train.conftest import tiny_config

    project = tmp_path / "project"
    shutil.copytree(tiny_trained["root"], project, symlinks=True)
    in_project(project)
    best = project / tiny_trained["run_dir"].relative_to(tiny_trained["root"]) / "best"
    _set_tta(best, True)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    frozen = cli("freeze", "--tag", "t1", "--run", tiny_trained["run_id"], "--force")
    assert frozen.exit_code == 0, frozen.output
    release = project / "releases" / "t1"
    assert json.loads((release / "model.json").read_text())["tta"] == json.loads(best.with_suffix(".json").read_text())["tta"]
    with monkeypatch.context() as patch:
        rows = count_forward_rows(patch, OnnxPredictor)
        out = cli("predict", *_test_photos(project, 2), "--checkpoint", release, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["model"]["engine"] == "onnx" and rows == [2 * n_views(3)]

    monkeypatch.setattr(tta, "tta_loader", lambda *a, **k: pytest.fail("eval.tta = off built the views' loader"))
    cfg = tiny_config(["eval.tta=off"])
    summary = run_evaluate(cfg, ProjectPaths.from_config(cfg.paths), tiny_trained["run_id"])
    record = {"setting": "off", "enabled": False, "crops": 3, "views": 1, "val": {}}
    assert summary["tta"] == record and json.loads(best.with_suffix(".json").read_text())["tta"] == record
