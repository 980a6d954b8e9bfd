"""The systems seam: one place says which system a config or a run is, and picks its entry points."""

from __future__ import annotations

import json

from geolocate import systems
from geolocate.config import PathsConfig, load_config
from geolocate.paths import ProjectPaths


def test_a_config_is_scout_sniper_when_it_names_a_phase(workdir):
    assert systems.system_of(load_config(None, "tiny", [])) == systems.V1
    assert systems.system_of(load_config(None, "tiny-scout-sniper", ["train.phase='all'"])) == systems.SCOUT_SNIPER


def test_a_run_is_what_its_saved_config_says(tmp_path):
    v1, scout, bundle_only = (tmp_path / n for n in ("v1", "scout", "bundle-only"))
    for root in (v1, scout, bundle_only):
        root.mkdir()
    (v1 / "config.json").write_text(json.dumps({"train": {"phase": None}}))
    (scout / "config.json").write_text(json.dumps({"train": {"phase": "sniper"}}))
    (bundle_only / "scout_sniper.json").write_text("{}")
    assert systems.system_of_run(v1) == systems.V1
    assert systems.system_of_run(scout) == systems.SCOUT_SNIPER
    assert systems.system_of_run(bundle_only) == systems.SCOUT_SNIPER
    paths = ProjectPaths.from_config(PathsConfig())
    assert systems.evaluator(paths, str(v1)).__module__ == "geolocate.evaluate.run"
    assert systems.evaluator(paths, str(scout)).__module__ == "geolocate.scout.evaluate"
    assert systems.trainer(load_config(None, "tiny", []), paths, resume=str(scout)).__module__ == "geolocate.scout.train"
    assert systems.trainer(load_config(None, "tiny", []), paths).__module__ == "geolocate.train.run"
    assert systems.release_model(paths, str(v1)) is not systems.release_model(paths, str(scout))


def test_predict_locates_the_model_of_its_system_once(tmp_path, monkeypatch):
    import pytest

    from geolocate.errors import UserError

    monkeypatch.chdir(tmp_path)
    paths = ProjectPaths.from_config(PathsConfig())
    scout, v1 = tmp_path / "scout", tmp_path / "v1"
    scout.mkdir()
    v1.mkdir()
    (scout / "config.json").write_text(json.dumps({"train": {"phase": "all"}}))
    (scout / "scout_sniper.json").write_text("{}")
    (v1 / "best.json").write_text("{}")
    assert systems.locate_model(scout, paths) == (systems.SCOUT_SNIPER, scout)
    assert systems.locate_model(scout, paths, four_view=True) == (systems.SCOUT_SNIPER, scout)
    assert systems.locate_model(v1, paths) == (systems.V1, v1 / "best")
    with pytest.raises(UserError, match="single-photo model"):  # views given to a v1 model
        systems.locate_model(v1, paths, four_view=True)
    with pytest.raises(UserError, match="no scout-sniper model yet"):  # "best" of the four-view system
        systems.locate_model("best", paths, four_view=True)
    with pytest.raises(UserError, match="no global best model yet"):
        systems.locate_model("best", paths)


def test_batch_runs_the_four_view_pipeline_and_never_reaches_the_single_photo_trainer(cli, workdir, monkeypatch):
    """`batch --profile tiny-scout-sniper` once synthesised, labelled and split photos, then trained v1 on
    them; then it was refused. Now it runs the four-view steps, and a second run skips them all."""
    import json

    import geolocate.train.run

    def v1_trainer(*args, **kwargs):
        raise AssertionError("the four-view profile reached v1's trainer")

    monkeypatch.setattr(geolocate.train.run, "run_train", v1_trainer)
    args = ("batch", "--profile", "tiny-scout-sniper", "--batch", "01", "--synthetic", "--set", "synth.n_photos=480", "--json")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["step"] for s in doc["steps"]] == ["synth", "prepare", "locations", "regions", "train"]
    assert all(s["status"] == "ran" for s in doc["steps"]) and doc["export"] is None
    assert (workdir / "runs" / doc["run_id"] / "scout_sniper.json").is_file() and doc["gates"]
    assert not (workdir / "data" / "cells.parquet").exists()  # no single-photo stage ran
    again = json.loads(cli(*args).stdout)
    assert [s["status"] for s in again["steps"]] == ["skipped"] * 5 and again["run_id"] == doc["run_id"]


def test_demo_with_a_four_view_profile_is_refused_in_one_line(cli, workdir):
    result = cli("demo", "--profile", "tiny-scout-sniper", "--workdir", str(workdir / "demo"))
    assert result.exit_code != 0 and "`geolocate demo` runs the single-photo pipeline" in result.output


def test_the_batch_plan_trains_through_the_systems_seam(workdir, monkeypatch):
    from geolocate import systems
    from geolocate.ops.batch import Plan, run_step

    asked = []

    class Run:
        run_id, metrics = "r", {"test": {"median_km": 1.0, "acc_top1": 0.5}}

    def trainer(cfg, paths, resume=None):
        asked.append(systems.system_of(cfg))
        return lambda cfg, paths, resume=None: [Run()]

    monkeypatch.setattr(systems, "trainer", trainer)
    cfg = load_config(None, "tiny", [])
    assert "run r" in run_step(Plan(cfg, ProjectPaths.from_config(cfg.paths), "01"), "train") and asked == [systems.V1]
