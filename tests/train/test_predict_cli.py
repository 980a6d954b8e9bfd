"""`geolocate predict` on the tiny trained model: output forms, truth, bad inputs, no unpickling."""

from __future__ import annotations

import json
import pickle

import polars as pl
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def _test_photo(root):
    split = pl.read_parquet(root / "data/split.parquet").filter(pl.col("split") == "test").sort("image_id")
    row = split.join(pl.read_parquet(root / "data/manifest.parquet"), on="image_id").row(0, named=True)
    return root / "data" / row["processed_path"], row


def test_single_photo_table_with_truth(tiny_trained, cli, in_project):
    root = in_project(tiny_trained["root"])
    photo, row = _test_photo(root)
    result = cli("predict", photo, "--top", "3", "--lat", row["lat"], "--lon", row["lon"])
    assert result.exit_code == 0, result.output
    assert "error" in result.stdout and "probability" in result.stdout


def test_json_and_out_files(tiny_trained, cli, in_project, tmp_path):
    root = in_project(tiny_trained["root"])
    photo, _ = _test_photo(root)
    result = cli("predict", photo, "--json", "--top", "5")
    data = json.loads(result.stdout)
    top = data["predictions"][0]["top"]
    assert [t["rank"] for t in top] == [1, 2, 3, 4, 5]
    assert sum(t["prob"] for t in top) <= 1.0 + 1e-6 and top[0]["prob"] >= top[-1]["prob"]
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"preds.{suffix}"
        assert cli("predict", photo.parent, "--out", out).exit_code == 0
        df = pl.read_csv(out) if suffix == "csv" else pl.read_parquet(out)
        assert df.height == len(list(photo.parent.glob("*.jpg")))


def _bad_files(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (80, 60), "gray").save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    return {"missing": tmp_path / "missing.jpg", "not an image": text, "truncated": truncated}, good


@pytest.mark.parametrize("kind", ["missing", "not an image", "truncated"])
def test_bad_single_input_is_one_line(tiny_trained, cli, in_project, tmp_path, kind):
    in_project(tiny_trained["root"])
    bad, _ = _bad_files(tmp_path)
    result = cli("predict", bad[kind])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output


def test_decompression_bomb_refused(tiny_trained, cli, in_project, tmp_path, monkeypatch):
    in_project(tiny_trained["root"])
    big = tmp_path / "big.png"
    Image.new("L", (400, 400)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    result = cli("predict", big)
    assert result.exit_code == 2 and "too large" in result.output


def test_batch_reports_bad_files_and_predicts_the_rest(tiny_trained, cli, in_project, tmp_path):
    in_project(tiny_trained["root"])
    bad, good = _bad_files(tmp_path)
    result = cli("predict", good, *bad.values(), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [p["file"] for p in data["predictions"]] == [str(good)]
    assert len(data["failures"]) == 3


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_pickle_checkpoint_is_refused_without_running_it(tiny_trained, cli, in_project, tmp_path):
    root = in_project(tiny_trained["root"])
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "best.json").write_text((tiny_trained["run_dir"] / "best.json").read_text())
    (evil / "best.pt").write_bytes(pickle.dumps({"weights": _Payload()}))
    photo, _ = _test_photo(root)
    result = cli("predict", photo, "--model", evil / "best.pt")
    assert result.exit_code != 0
    assert not (root / "PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_folder_keeps_top_names_relative_and_ends_with_a_summary(tiny_trained, cli, in_project, tmp_path):
    import shutil

    root = in_project(tiny_trained["root"])
    photo, row = _test_photo(root)
    folder = tmp_path / "holiday"
    (folder / "day-one").mkdir(parents=True)
    names = [f"day-one/a-rather-long-street-photo-name-number-{i}.jpg" for i in range(7)]
    for name in names:
        shutil.copy(photo, folder / name)
    result = cli("predict", folder, "--top", "2", "--lat", row["lat"], "--lon", row["lon"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    flat = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    for name in names:  # folded over lines, never cut: each row can be told apart
        assert name in flat
    assert str(folder) not in result.stdout  # names are relative to the folder given
    assert sum(" 2. " in line for line in lines) == 7  # --top 2 is kept above five photos
    assert lines[-1].startswith("7 photos, 0 failed; median error ") and "over 7 with known truth" in lines[-1]
