"""Seeds summary, and refusals when the data under a run changed or a split is empty."""

from __future__ import annotations

import json

import pytest

from geolocate.errors import UserError

pytestmark = pytest.mark.slow
QUICK = ["train.epochs=2", "train.max_steps_per_epoch=3", "train.patience=10"]


def test_seeds_report_mean_and_std(project, tiny_config):
    from geolocate.paths import ProjectPaths
    from geolocate.train.run import run_train

    cfg = tiny_config(QUICK)
    runs = run_train(cfg, ProjectPaths.from_config(cfg.paths), seeds=2)
    assert len({r.run_id for r in runs}) == 2
    summary = json.loads(next((project / "runs").glob("seeds-*.json")).read_text())
    assert summary["runs"] == [r.run_id for r in runs]
    medians = [r.metrics["test"]["median_km"] for r in runs]
    assert summary["test"]["median_km"]["mean"] == pytest.approx(sum(medians) / 2)
    # The report is built from data (train never edits REPORT.md): the last run holds the summary.
    assert json.loads((project / runs[-1].run_dir / "seeds.json").read_text()) == summary


def test_resume_and_evaluate_refuse_changed_labels(project, tiny_config):
    from geolocate.cells import run_cells
    from geolocate.evaluate.run import run_evaluate
    from geolocate.paths import ProjectPaths
    from geolocate.split.run import run_split
    from geolocate.train.run import run_train

    cfg = tiny_config(QUICK)
    paths = ProjectPaths.from_config(cfg.paths)
    run_train(cfg, paths)
    changed = tiny_config([*QUICK, "split.seed=7"])
    run_cells(changed.cells, paths.data)
    run_split(changed, paths.data)
    with pytest.raises(UserError, match="changed since it was trained"):
        run_evaluate(changed, paths, "latest")
    with pytest.raises(UserError, match="changed since it was trained"):
        run_train(changed, paths, resume="latest")


def test_training_refuses_an_empty_split(project, tiny_config):
    import polars as pl

    from geolocate.paths import ProjectPaths
    from geolocate.train.run import run_train

    cfg = tiny_config(QUICK)
    split = project / "data/split.parquet"
    pl.read_parquet(split).filter(pl.col("split") != "test").write_parquet(split)
    with pytest.raises(UserError, match="no test photos"):
        run_train(cfg, ProjectPaths.from_config(cfg.paths))


def test_v1_honours_freeze_backbone_and_train_last_n_blocks(tiny_config):
    """v1 used to build its model without these keys: `--set model.freeze_backbone=true` changed nothing."""
    from geolocate.train.setup import build_net

    def trainable(*overrides):
        model = build_net(tiny_config(list(overrides)), 3)
        return {name for name, p in model.named_parameters() if p.requires_grad}

    everything, head = trainable(), trainable("model.freeze_backbone=true")
    assert head and all(name.startswith("head.") for name in head) and len(everything) > len(head)
    last = trainable("model.freeze_backbone=true", "model.train_last_n_blocks=1")
    assert head < last < everything


@pytest.mark.parametrize("patience", [0, 1])
def test_patience_stops_v1_training_or_is_off_at_zero(project, tiny_config, patience):
    import polars as pl

    from geolocate.paths import ProjectPaths
    from geolocate.train.run import run_train

    cfg = tiny_config(["train.epochs=4", "train.max_steps_per_epoch=2", f"train.patience={patience}"])
    run = run_train(cfg, ProjectPaths.from_config(cfg.paths))[0]
    rows = pl.read_csv(project / run.run_dir / "metrics.csv").to_dicts()
    if patience == 0:
        assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
        return
    # patience 1: every epoch but the last improved (median km, then p90), and the run ends at
    # the first one that did not, or at the last epoch.
    keys = [(r["val_median_km"], r["val_p90_km"]) for r in rows]
    improved = [i == 0 or keys[i] < min(keys[:i]) for i in range(len(keys))]
    assert all(improved[:-1]) and (len(rows) == 4 or not improved[-1]), keys
