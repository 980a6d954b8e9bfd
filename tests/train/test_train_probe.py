"""France v1's linear probe on cached features, and the head chosen on val on small data."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
import torch

from geolocate.train.heads import candidate_heads
from geolocate.train.probe import fold_standardisation, standardiser


def test_folded_probe_gives_the_same_logits_from_raw_features():
    torch.manual_seed(0)
    x = torch.randn(50, 16) * torch.linspace(0.1, 30, 16) + 5
    x[:, 3] = 2.0  # a constant feature: std 1, and its weight must not blow up
    mean, std = standardiser(x)
    weight, bias = torch.randn(4, 16), torch.randn(4)
    folded_w, folded_b = fold_standardisation(weight, bias, mean, std)
    assert torch.allclose(x @ folded_w.T + folded_b, ((x - mean) / std) @ weight.T + bias, atol=1e-4)
    assert std[3] == 1


@pytest.mark.parametrize(("overrides", "n_train", "heads"), [
    ([], 500, ["probe", "knn", "knn+probe"]),  # auto, small data, default heads: the probe and the votes (mean/transformer are four-view)
    ([], 5000, ["finetune"]),  # auto at or above train.small_data: fine-tune as before
    (["train.small_data_heads=['probe', 'finetune']"], 500, ["finetune", "probe"]),  # fine-tune first
    (["train.small_data_heads=['transformer']"], 500, ["finetune"]),  # no single-photo head listed
    (["model.freeze_backbone=true"], 5000, ["probe"]),  # a frozen backbone: its features, cached
    (["model.freeze_backbone=true", "model.train_last_n_blocks=1"], 5000, ["finetune"]),
    (["model.head='finetune'", "model.freeze_backbone=true"], 500, ["finetune"]),  # today's path, honoured
    (["model.head='probe'"], 5000, ["probe"]),
])
def test_candidate_heads(tiny_config, overrides, n_train, heads):
    cfg = tiny_config(["train.small_data=2000", *overrides])
    assert candidate_heads(cfg, n_train) == heads


def test_small_data_heads_must_name_one(tiny_config):
    from geolocate.errors import UserError

    with pytest.raises(UserError, match="at least 1 item"):
        tiny_config(["train.small_data_heads=[]"])


def test_head_selection_section_marks_the_choice():
    from geolocate.evaluate.report import V1_HEAD_RULE, head_selection_section

    lines = head_selection_section([
        {"head": "finetune", "val_median_km": 3.2, "val_p90_km": 9.0, "val_score": 1.2, "seconds": 600.0, "chosen": False},
        {"head": "probe", "val_median_km": 1.5, "val_p90_km": 6.0, "val_score": 0.8, "seconds": 2.0, "chosen": True}],
        rule=V1_HEAD_RULE)
    text = "\n".join(lines)
    assert "| **probe** | 1.50 km | 6.00 km | 0.80 | 2 |" in text and "| finetune | 3.20 km | 9.00 km | 1.20 | 600 |" in text
    assert "best baseline (trivial or 5-NN) on both median and p90" in text  # one rule for both systems


# --------------------------------------------------------------- on the tiny project (slow)

QUICK = ["train.epochs=2", "train.max_steps_per_epoch=3", "train.patience=10"]


def _train(tiny_config, overrides):
    from geolocate.paths import ProjectPaths
    from geolocate.train.run import run_train

    cfg = tiny_config([*QUICK, *overrides])
    paths = ProjectPaths.from_config(cfg.paths)
    return cfg, paths, run_train(cfg, paths)[0]


def _untrained(tiny_config, cfg, num_classes):
    from geolocate.train.setup import build_net, seed_everything

    seed_everything(cfg.train.seed)
    return build_net(cfg, num_classes)


def _backbone_equal(a, b) -> bool:
    sa, sb = a.backbone.state_dict(), b.backbone.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_probe_run_is_an_ordinary_v1_run(project, tiny_config, cli):
    from geolocate.artifacts.checkpoint import load_checkpoint
    from geolocate.data.images import load_rgb
    from geolocate.data.transforms import eval_transform
    from geolocate.models.features import FeatureCache

    cfg, paths, summary = _train(tiny_config, ["model.head='probe'"])
    run = project / summary.run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    [row] = metrics["head_selection"]
    assert row["head"] == "probe" and row["chosen"] and row["seconds"] < 60
    assert "Head chosen on val: **probe** (the only candidate)." in (run / "REPORT.md").read_text()
    epochs = pl.read_csv(run / "metrics.csv")  # the probe's epochs, as fit() writes them
    assert epochs["epoch"].to_list() == list(range(1, epochs.height + 1)) and epochs.height > 2
    assert epochs["val_median_km"].min() == pytest.approx(row["val_median_km"])
    assert (project / "runs/latest").resolve() == run.resolve()

    model, meta = load_checkpoint(run / "best")
    assert _backbone_equal(model, _untrained(tiny_config, cfg, len(meta["classes"])))  # only the head learned
    # The fold: the full model on a photo == its linear head on the photo's cached embedding.
    [cached] = list((paths.data.features / "tiny_resnet").glob("*.safetensors"))  # probe + k-NN baselines share it
    ids, feats, _ = FeatureCache(paths.data.features, "tiny_resnet", model).load()
    image_id, path = pl.read_parquet(paths.data.manifest).select("image_id", "processed_path").row(0)
    side = meta["preprocessing"]["input_size"][-1]
    with torch.no_grad():
        photo = eval_transform(meta["preprocessing"])(load_rgb(paths.data.root / path, side))[None]
        direct = model.eval()(photo)[0]
        probe = model.head(feats[ids.index(image_id)])
    assert torch.allclose(direct, probe, atol=1e-4)
    assert (direct.argmax() == probe.argmax()).item()

    from geolocate.artifacts.onnx_export import export_onnx

    assert export_onnx(run / "best")["parity"]["passed"]  # the same graph as any v1 model
    for engine in ("torch", "onnx"):
        assert cli("predict", paths.data.root / path, "--checkpoint", str(run), "--engine", engine).exit_code == 0
    evaluated = cli("evaluate", "--run", summary.run_id, "--json")
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["head_selection"][0]["head"] == "probe"


@pytest.mark.slow
def test_resume_of_a_probe_run_says_it_is_complete_or_redoes_it(project, tiny_config, capsys):
    from geolocate.train.run import run_train

    cfg, paths, summary = _train(tiny_config, ["model.freeze_backbone=true"])  # auto + frozen: the probe
    run = project / summary.run_dir
    before = (run / "best.safetensors").stat().st_mtime_ns
    again = run_train(cfg, paths, resume=summary.run_id)[0]
    assert "is complete" in capsys.readouterr().err
    assert again.metrics == summary.metrics and (run / "best.safetensors").stat().st_mtime_ns == before

    plan = run / "head_selection.json"  # as a run killed mid-probe leaves it: the plan, no result
    plan.write_text(json.dumps({"candidates": ["probe"], "rows": []}))
    redone = run_train(cfg, paths, resume=summary.run_id)[0]
    assert "training it again" in capsys.readouterr().err
    assert redone.metrics["test"] == pytest.approx(summary.metrics["test"])
    assert json.loads(plan.read_text())["chosen"] == "probe"


@pytest.mark.slow
@pytest.mark.parametrize("winner", ["finetune", "probe"])
def test_auto_keeps_the_head_better_on_val(project, tiny_config, monkeypatch, winner):
    from geolocate.artifacts.checkpoint import load_checkpoint
    from geolocate.train import heads

    real_fit = heads.fit

    def fit_scored(*args, **kwargs):  # the fine-tune's val figures, made to win or lose visibly
        result = real_fit(*args, **kwargs)
        km = 0.0 if winner == "finetune" else 1e6
        result.best_row = {**result.best_row, "val_median_km": km, "val_p90_km": km}
        return result

    monkeypatch.setattr(heads, "fit", fit_scored)
    cfg, _, summary = _train(tiny_config, ["train.small_data=100000", "train.small_data_heads=['probe', 'finetune']"])
    run = project / summary.run_dir
    rows = json.loads((run / "metrics.json").read_text())["head_selection"]
    assert [r["head"] for r in rows] == ["finetune", "probe"]
    assert [r["head"] for r in rows if r["chosen"]] == [winner]
    assert f"| **{winner}** |" in (run / "REPORT.md").read_text()
    model, meta = load_checkpoint(run / "best")
    assert _backbone_equal(model, _untrained(tiny_config, cfg, len(meta["classes"]))) == (winner == "probe")
    columns = pl.read_csv(run / "metrics.csv").columns
    assert ("weight_decay" in columns) == (winner == "probe")  # metrics.csv is the kept head's history


@pytest.mark.slow
def test_v1_evaluation_reads_its_knn_embeddings_from_the_cache(tiny_trained, in_project, monkeypatch, tmp_path):
    """The k-NN baselines used to push every photo through the backbone at every evaluation."""
    from geolocate.evaluate.run import run_evaluate
    from geolocate.models import embed
    from geolocate.paths import ProjectPaths
    from tests.train.conftest import tiny_config

    # A copy: evaluating again rewrites the run's metrics.json, which other tests read as the first evaluation's.
    in_project(shutil.copytree(tiny_trained["root"], tmp_path / "project", symlinks=True))
    embedded = []  # every photo embedding goes through this one function, cached or not
    real = embed.iter_embeddings
    monkeypatch.setattr(embed, "iter_embeddings", lambda model, photos, *a: embedded.append(len(photos)) or real(model, photos, *a))
    cfg = tiny_config()
    summary = run_evaluate(cfg, ProjectPaths.from_config(cfg.paths), tiny_trained["run_id"])
    assert embedded == [] and summary["baselines"]["5-NN"]["n"] == summary["metrics"]["test"]["n"]


def test_v1_evaluation_builds_the_frozen_backbone_once_for_the_val_bar_and_the_baselines(
        tiny_trained, in_project, monkeypatch, tmp_path):
    from geolocate.evaluate import baseline_data
    from geolocate.evaluate.run import run_evaluate
    from geolocate.paths import ProjectPaths
    from tests.train.conftest import tiny_config

    in_project(shutil.copytree(tiny_trained["root"], tmp_path / "project", symlinks=True))
    calls = []
    real = baseline_data.frozen_embeddings
    monkeypatch.setattr(baseline_data, "frozen_embeddings", lambda *a: calls.append(len(a[2])) or real(*a))
    cfg = tiny_config()
    summary = run_evaluate(cfg, ProjectPaths.from_config(cfg.paths), tiny_trained["run_id"])
    assert len(calls) == 1 and "5-NN" in summary["baselines"]


@pytest.mark.slow
def test_vote_heads_are_v1_candidates_saved_evaluated_and_predicted(project, tiny_config, cli):
    from geolocate.artifacts.checkpoint import load_checkpoint

    cfg, paths, summary = _train(tiny_config, ["train.small_data=100000", "train.small_data_heads=['knn', 'knn+probe']",
                                               "eval.tta=off"])
    run = project / summary.run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    rows = metrics["head_selection"]
    assert [r["head"] for r in rows] == ["knn", "knn+probe"] and sum(r["chosen"] for r in rows) == 1
    assert all(r["val_score"] > 0 for r in rows)
    model, meta = load_checkpoint(run / "best")
    votes = meta["model"]["kwargs"]["votes"]
    assert model.head.settings == votes and votes["size"] == int(model.head.keys.shape[0]) > 0
    # val joined the index once it had chosen, and evaluation measured val held out of it: the
    # evaluated val top-1 is the one the choice saw (with val's own photos voting it would be higher)
    split = pl.read_parquet(paths.data.root / "split.parquet")["split"].to_list()
    assert (votes["train_size"], votes["size"]) == (split.count("train"), split.count("train") + split.count("val"))
    chosen = next(r for r in rows if r["chosen"])
    assert metrics["metrics"]["val"]["acc_top1"] == pytest.approx(chosen["val_acc_top1"])
    # metrics.csv holds the settings the vote head tried, not epochs: no stability verdict from them
    stability = next(g for g in metrics["gates"] if g["name"].startswith("stability"))
    assert stability["applicable"] is False and metrics["stability"]["trained_epochs"] is False
    assert "Not measured: val chose a k-NN vote head (`" in (run / "REPORT.md").read_text()
    assert _backbone_equal(model, _untrained(tiny_config, cfg, len(meta["classes"])))  # nothing but the head learned
    image = pl.read_parquet(paths.data.manifest)["processed_path"][0]
    from geolocate.artifacts.onnx_export import export_onnx

    assert export_onnx(run / "best")["parity"]["passed"]  # top-k and the votes' scatter export too
    for engine in ("torch", "onnx"):
        assert cli("predict", paths.data.root / image, "--checkpoint", str(run), "--engine", engine).exit_code == 0
    evaluated = cli("evaluate", "--run", summary.run_id, "--json")
    assert evaluated.exit_code == 0
    assert json.loads(evaluated.stdout)["metrics"]["test"] == pytest.approx(summary.metrics["test"])
