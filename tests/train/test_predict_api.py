"""The Python API (`from geolocate import Geolocator`) on the tiny trained model: one schema with
`predict --json`, every kind of photo input, the ONNX path without torch, one resolve and one open,
and the README's example run as it is written."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def _test_photo(root):
    split = pl.read_parquet(root / "data/split.parquet").filter(pl.col("split") == "test").sort("image_id")
    row = split.join(pl.read_parquet(root / "data/manifest.parquet"), on="image_id").row(0, named=True)
    return root / "data" / row["processed_path"], row


def test_same_fields_as_predict_json_for_every_kind_of_photo(tiny_trained, cli, in_project):
    from geolocate import Geolocator

    root = in_project(tiny_trained["root"])
    photo, row = _test_photo(root)
    g = Geolocator.load(tiny_trained["run_dir"], engine="torch")
    r = g.predict(photo, top=3, truth=(row["lat"], row["lon"]))
    cli_json = json.loads(cli("predict", photo, "--checkpoint", tiny_trained["run_dir"], "--engine", "torch", "--top", "3",
                              "--lat", row["lat"], "--lon", row["lon"], "--json").stdout)
    _same_prediction(r.to_dict(model=False), cli_json["predictions"][0])
    assert r.model == cli_json["model"] and r.to_dict()["model"] == r.model
    assert r.error_km is not None and r.radius_km is not None and len(r.top) == 3
    assert all(len(c["polygon"]) == 7 and c["polygon"][0] == c["polygon"][-1] for c in r.top)  # H3 hexagons, closed
    pixels = Image.open(photo).convert("RGB")
    for source in (photo.read_bytes(), pixels, np.asarray(pixels), str(photo)):
        other = g.predict(source, top=3)
        assert [c["cell_id"] for c in other.top] == [c["cell_id"] for c in r.top]
        assert other.confidence == pytest.approx(r.confidence, abs=1e-5)
    assert g.predict(photo.read_bytes()).file == "photo 1"


def _same_prediction(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        if key == "top":
            assert [c["cell_id"] for c in a["top"]] == [c["cell_id"] for c in b["top"]]
            assert [c["prob"] for c in a["top"]] == pytest.approx([c["prob"] for c in b["top"]], abs=1e-5)
        elif isinstance(a[key], float):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
        else:
            assert a[key] == b[key], key


def test_geojson_of_a_result(tiny_trained, in_project):
    from geolocate import Geolocator

    root = in_project(tiny_trained["root"])
    photo, row = _test_photo(root)
    doc = Geolocator.load(tiny_trained["run_dir"]).predict(photo, top=4, truth=(row["lat"], row["lon"])).to_geojson()
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert kinds == ["cell"] * 4 + ["prediction", "credible_circle", "truth"]
    assert doc["properties"]["model"]["run_id"] == tiny_trained["run_id"]


def test_bad_inputs_are_one_line_user_errors(tiny_trained, in_project, tmp_path):
    from geolocate import Geolocator
    from geolocate.errors import UserError

    in_project(tiny_trained["root"])
    g = Geolocator.load(tiny_trained["run_dir"])
    for bad, reason in ((b"not an image", "not an image"), (np.zeros((4, 4), dtype=np.float32), "uint8"),
                        (tmp_path / "missing.jpg", "missing"), (3.5, "cannot read a photo")):
        with pytest.raises(UserError, match=reason):
            g.predict(bad)
    batch = g.predict_many([b"junk", _test_photo(tiny_trained["root"])[0]])
    assert len(batch.results) == 1 and [f.file for f in batch.failures] == ["photo 1"]
    with pytest.raises(UserError, match="no checkpoint"):
        Geolocator.load(tmp_path / "nowhere")


def test_onnx_release_answers_without_importing_torch(exported, tiny_trained, in_project):
    root = in_project(tiny_trained["root"])
    photo, _ = _test_photo(root)
    code = ("import sys; from geolocate import Geolocator; "
            f"g = Geolocator.load({str(exported)!r}); r = g.predict({str(photo)!r}); "
            "print(g.engine, r.model['engine'], sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules), len(r.top))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["onnx", "onnx", "[]", "5"], out.stdout + out.stderr


def test_a_predict_resolves_the_model_once_and_opens_the_photo_once(exported, tiny_trained, cli, in_project, monkeypatch):
    import geolocate.artifacts.resolve as resolve

    root = in_project(tiny_trained["root"])
    photo, _ = _test_photo(root)
    calls = {"resolve": 0, "open": []}
    real_resolve, real_open = resolve.resolve_checkpoint, Image.open

    def counting_resolve(ref, *args, **kwargs):
        calls["resolve"] += 1
        return real_resolve(ref, *args, **kwargs)

    def counting_open(fp, *args, **kwargs):
        calls["open"].append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(resolve, "resolve_checkpoint", counting_resolve)
    monkeypatch.setattr(Image, "open", counting_open)
    result = cli("predict", photo, "--checkpoint", exported, "--json")
    assert result.exit_code == 0, result.output
    assert calls["resolve"] == 1
    assert calls["open"].count(str(photo)) == 1


def test_the_readme_example_runs(tiny_trained, cli, tmp_path, monkeypatch):
    """The README's "Python API" block, run as written in a project with `releases/v1` and `photo.jpg`."""
    project = tmp_path / "project"
    shutil.copytree(tiny_trained["root"], project, symlinks=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    result = cli("freeze", "--tag", "v1", "--run", tiny_trained["run_id"], "--force")
    assert result.exit_code == 0, result.output
    photo, _ = _test_photo(project)
    shutil.copyfile(photo, project / "photo.jpg")
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "km" in out.stdout and "onnx" in out.stdout and tiny_trained["run_id"] in out.stdout


def test_plain_predict_prefers_the_graph_export_model_wrote(tiny_trained, cli, tmp_path, monkeypatch):
    """`export-model` writes the graph beside the run's best; plain `predict` (models/best) then runs onnx."""
    project = tmp_path / "project"
    shutil.copytree(tiny_trained["root"], project, symlinks=True)
    monkeypatch.chdir(project)
    photo, _ = _test_photo(project)
    before = json.loads(cli("predict", photo, "--json").stdout)["model"]
    assert before["engine"] == "torch" and before["run_id"] == tiny_trained["run_id"]
    assert cli("export-model", "--run", tiny_trained["run_id"]).exit_code == 0
    result = cli("predict", photo, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["engine"] == "onnx"
    line = " ".join(result.stderr.split())
    assert f"model: run {tiny_trained['run_id']} (profile tiny, " in line and " via onnx)" in line and " 0 cities" not in line
