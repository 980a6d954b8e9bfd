"""Test-time views for the four-view system: chosen once by the ensemble phase (`eval.tta`), recorded
in the bundle, followed by the sniper, evaluation and predict (each view photo as its 6 views)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from geolocate.errors import UserError

P = ("--profile", "tiny-scout-sniper")
VIEWS = ("north", "east", "south", "west")


def _tta_files(project: Path) -> list[Path]:
    return sorted((project / "data" / "features").glob("*/*-tta*.safetensors"))


def _latest_run(project: Path) -> Path:
    return (project / "runs" / "latest").resolve()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny scout-sniper project trained twice: `eval.tta = off`, then `on`: (root, off run, on run, TTA files after off)."""
    from typer.testing import CliRunner

    from geolocate.cli import app
    from geolocate.ops.demo import working_directory

    root = tmp_path_factory.mktemp("scout_tta")
    runner, runs = CliRunner(), {}
    with working_directory(root):
        for args in (("synth", *P, "--n", "240"), ("prepare", *P), ("locations", *P), ("regions", *P)):
            assert runner.invoke(app, list(args), catch_exceptions=False).exit_code == 0
        for setting in ("off", "on"):
            result = runner.invoke(app, ["train", *P, "--phase", "all", "--set", f"eval.tta={setting}"], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            runs[setting] = _latest_run(root)
            if setting == "off":
                after_off = _tta_files(root)
    return root, runs["off"], runs["on"], after_off


def _test_locations(project: Path, run: Path, n: int) -> list[tuple[str, dict]]:
    """The first `n` test locations evaluate predicted: (location id, {view: photo file})."""
    data = project / "data"
    manifest = dict(pl.read_parquet(data / "manifest.parquet").select("image_id", "processed_path").iter_rows())
    locations = pl.read_parquet(data / "locations.parquet")
    ids = pl.read_parquet(run / "predictions.parquet")["image_id"].head(n).to_list()
    rows = [locations.filter(pl.col("location_id") == i).row(0, named=True) for i in ids]
    return [(row["location_id"], {v: data / manifest[row[v]] for v in VIEWS if row[v]}) for row in rows]


def _predicted(run: Path, items: list[dict], monkeypatch) -> tuple[list[dict], list[int]]:
    """Rows of the four-view predictor for `items`, and the rows of every backbone pass it made."""
    from geolocate.scout.predict import ScoutSniperPredictor
    from tests.fakes.models import count_forward_rows

    rows = count_forward_rows(monkeypatch, ScoutSniperPredictor, "_embed")
    predicted, failures = ScoutSniperPredictor.load(run).predict_items(items)
    assert failures == []
    return predicted, rows


def test_on_is_recorded_and_predict_averages_six_views_as_evaluation_did(project, monkeypatch):
    root, _, run, _ = project
    record = json.loads((run / "scout_sniper.json").read_text())["tta"]
    assert record == {"setting": "on", "enabled": True, "crops": 3, "views": 6, "val": {}}
    assert json.loads((run / "metrics.json").read_text())["tta"] == record
    assert "Test-time augmentation: **on** (6 views: 3 crops and their mirror images)" in (run / "REPORT.md").read_text()
    located = _test_locations(root, run, 3)
    predicted, rows = _predicted(run, [views for _, views in located], monkeypatch)
    n_views = sum(len(views) for _, views in located)
    assert rows == [6 * n_views, 6 * n_views]  # one pass per scout, each view photo as its 6 views
    evaluated = pl.read_parquet(run / "predictions.parquet").head(3)
    for row, truth in zip(predicted, evaluated.iter_rows(named=True)):
        assert row["lat"] == pytest.approx(truth["pred_lat"], abs=1e-6) and row["lon"] == pytest.approx(truth["pred_lon"], abs=1e-6)
        assert row["confidence"] == pytest.approx(truth["top_probs"][0], abs=1e-5)


def test_off_computes_no_views_and_predict_runs_one_row_a_view(project, monkeypatch):
    root, run, _, after_off = project
    assert after_off == []  # nothing but the one-crop features was embedded
    assert json.loads((run / "scout_sniper.json").read_text())["tta"]["enabled"] is False
    located = _test_locations(root, run, 2)
    predicted, rows = _predicted(run, [views for _, views in located], monkeypatch)
    n_views = sum(len(views) for _, views in located)
    assert rows == [n_views, n_views] and len(predicted) == 2


def test_a_second_evaluate_reads_the_view_features_back(project, monkeypatch, cli):
    import geolocate.models.features as features

    root, _, run, _ = project
    files = _tta_files(root)
    assert len(files) == 2  # one per scout backbone, beside its one-crop features
    stamps = [f.stat().st_mtime_ns for f in files]
    embedded = []
    real = features.embed_images
    monkeypatch.setattr(features, "embed_images", lambda m, f, *a: embedded.append(len(f)) or real(m, f, *a))
    monkeypatch.chdir(root)
    before = pl.read_parquet(run / "predictions.parquet")
    assert cli("evaluate", *P, "--run", run.name).exit_code == 0
    assert embedded == [] and [f.stat().st_mtime_ns for f in files] == stamps  # no backbone pass, no new file
    assert pl.read_parquet(run / "predictions.parquet")["pred_lat"].to_list() == pytest.approx(before["pred_lat"].to_list())


def test_evaluate_loads_each_scout_once_for_both_sides(project, monkeypatch, cli):
    import geolocate.artifacts.checkpoint as checkpoint

    root, _, run, _ = project
    loaded = []
    real = checkpoint.load_checkpoint
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda stem, *a, **k: loaded.append(Path(stem).name) or real(stem, *a, **k))
    monkeypatch.chdir(root)
    assert cli("evaluate", *P, "--run", run.name).exit_code == 0
    assert sorted(name for name in loaded if name.startswith("scout")) == ["scout-clip", "scout-convnext"]


def test_the_views_leave_torchs_random_state_alone(project, monkeypatch):
    """Loading a scout for its test-time side must not move the global RNG that the sniper's
    initialisation draws on next: otherwise `eval.tta` would change what the sniper learns."""
    from geolocate.config import load_config
    from geolocate.paths import ProjectPaths
    from geolocate.scout.context import PhaseContext, scout_outputs
    from geolocate.scout.regions import load_regions, location_frame

    root, _, run, _ = project
    monkeypatch.chdir(root)
    cfg = load_config(profile="tiny-scout-sniper")
    paths = ProjectPaths.from_config(cfg.paths)
    ctx = PhaseContext(cfg, paths, run, location_frame(paths.data), load_regions(paths.data))
    plain = scout_outputs(ctx, "scout-clip", "plain")
    state = torch.random.get_rng_state()
    views = scout_outputs(ctx, "scout-clip", "tta")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert views["train"] is plain["train"] and not np.allclose(views["val"]["logits"], plain["val"]["logits"])
    assert scout_outputs(ctx, "scout-clip")["val"] is views["val"]  # the bundle (on) names the views


# ---------------------------------------------------------------- the choice, on made-up outputs

CENTROIDS = [(40.0, -70.0), (45.0, -60.0), (35.0, -80.0)]


def _outputs(labels: np.ndarray, right: np.ndarray) -> dict:
    """A scout's outputs: confident in the true region where `right`, in the next one elsewhere."""
    guess = np.where(right, labels, (labels + 1) % len(CENTROIDS))
    logits = np.full((len(labels), len(CENTROIDS)), -3.0)
    logits[np.arange(len(labels)), guess] = 3.0
    latlon = np.array(CENTROIDS)[labels] + 0.01
    return {"logits": logits, "fused": torch.zeros(len(labels), 4), "labels": labels, "latlon": latlon,
            "ids": [str(i) for i in range(len(labels))]}


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """An ensemble phase over one made-up scout whose val is right 6 of 10 times plain and
    `right["tta"]` times with the views: returns (context, sides asked for, the val right counts)."""
    import geolocate.scout.train as train
    from geolocate.config import load_config
    from geolocate.scout.context import PhaseContext

    labels = np.arange(30) % len(CENTROIDS)
    right = {"plain": 6, "tta": 6}
    asked = []

    def scout_outputs(ctx, phase, side=None):
        asked.append(side)
        val = _outputs(labels[:10], np.arange(10) < right[side or "plain"])
        return {"train": _outputs(labels[10:], np.ones(20, bool)), "val": val, "test": val}

    monkeypatch.setattr(train, "scout_outputs", scout_outputs)
    monkeypatch.setattr(train, "_trained_scouts", lambda ctx: ["scout-clip"])
    monkeypatch.setattr(train, "_val_bar", lambda ctx, centroids: (500.0, 1000.0))  # what val is ranked against
    regions = pl.DataFrame({"label": [0, 1, 2], "centroid_lat": [c[0] for c in CENTROIDS], "centroid_lon": [c[1] for c in CENTROIDS]})
    cfg = load_config(profile="tiny-scout-sniper")
    cfg.eval.position = "top1"  # each location at its top region's centroid: right or 1,000 km off
    return PhaseContext(cfg, None, tmp_path, pl.DataFrame(), regions), asked, right


@pytest.mark.parametrize("tta_right, kept", [(9, True), (4, False), (6, False)])
def test_auto_keeps_the_views_only_when_val_scores_them_strictly_better(fake_run, tta_right, kept):
    from geolocate.scout.bundle import read_bundle
    from geolocate.scout.train import _run_ensemble

    ctx, asked, right = fake_run
    right["tta"] = tta_right
    _run_ensemble(ctx, "ensemble")
    record = read_bundle(ctx.root)["tta"]
    assert record["setting"] == "auto" and record["enabled"] is kept and record["views"] == (6 if kept else 1)
    plain, tta = record["val"]["plain"]["score"], record["val"]["tta"]["score"]
    assert (tta < plain) is kept and {"plain", "tta"} <= set(asked)


def test_off_never_asks_for_the_views(fake_run):
    from geolocate.scout.bundle import read_bundle
    from geolocate.scout.train import _run_ensemble

    ctx, asked, right = fake_run
    ctx.cfg.eval.tta, right["tta"] = "off", 10
    _run_ensemble(ctx, "ensemble")
    assert read_bundle(ctx.root)["tta"] == {"setting": "off", "enabled": False, "crops": 3, "views": 1, "val": {}}
    assert "tta" not in asked


@pytest.mark.parametrize("record", [{"enabled": "yes"}, {"enabled": True, "crops": 7}, "on", [True]])
def test_a_tampered_tta_record_is_refused_in_one_line(tmp_path, record):
    from geolocate.scout.bundle import bundle_path, read_bundle

    doc = {"format": "geolocate.scout_sniper", "version": 1, "scouts": ["scout-clip"], "weights": [1.0], "tta": record}
    bundle_path(tmp_path).write_text(json.dumps(doc))
    with pytest.raises(UserError) as caught:
        read_bundle(tmp_path)
    assert "'tta" in str(caught.value) and "\n" not in str(caught.value)


def test_predict_embeds_a_large_batch_in_pieces_with_the_same_answers(project, monkeypatch):
    """With test-time views a batch is 24 rows a location: predict passes them through the backbone
    `EMBED_ROWS` at a time, and the answers do not depend on the size of the pieces."""
    import geolocate.scout.predict as scout_predict

    root, _, run, _ = project
    items = [views for _, views in _test_locations(root, run, 3)]
    whole, _ = scout_predict.ScoutSniperPredictor.load(run).predict_items(items)
    sizes = []
    from geolocate.models import features

    real = features.embedding_fn

    def spy(model):
        embed = real(model)
        return lambda x: (sizes.append(len(x)), embed(x))[1]

    monkeypatch.setattr(features, "embedding_fn", spy)
    monkeypatch.setattr(scout_predict, "EMBED_ROWS", 5)
    pieces, _ = scout_predict.ScoutSniperPredictor.load(run).predict_items(items)
    assert max(sizes) == 5 and sum(sizes) == 2 * 6 * sum(len(v) for v in items)  # two scouts
    for a, b in zip(whole, pieces):
        assert a["lat"] == pytest.approx(b["lat"], abs=1e-6) and a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)


def test_a_record_with_only_enabled_reads_as_the_single_photo_record_does():
    from geolocate.scout.bundle import tta_crops

    assert tta_crops({"tta": {"enabled": True}}) == 3 and tta_crops({"tta": {"enabled": False, "crops": 3}}) == 0
    assert tta_crops({}) == 0
