"""Scouts with trainable backbone blocks read images: the unfrozen block learns, the rest stays put."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from PIL import Image

from geolocate.config import load_config
from geolocate.models import create_model
from geolocate.data.views import LocationViews
from geolocate.train.view_heads import fit_through_images as fit_end_to_end


def _locations(tmp_path, n: int = 12):
    rng = np.random.default_rng(0)
    files, rows = {}, []
    for i in range(n):
        ids = [str(1000 + 4 * i + v) for v in range(4)]
        for image_id in ids[:3]:  # every west view is missing
            path = tmp_path / f"{image_id}.jpg"
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(path)
            files[image_id] = path
        rows.append({"location_id": str(i), "north": ids[0], "east": ids[1], "south": ids[2], "west": None,
                     "label": i % 2, "split": "val" if i % 4 == 0 else "train"})
    return pl.DataFrame(rows), files


def test_views_dataset_masks_the_missing_view(tmp_path):
    frame, files = _locations(tmp_path, 2)
    item = LocationViews(frame, files, lambda image: torch.ones(3, 8, 8), 8)[0]
    assert item["views"].shape == (4, 3, 8, 8) and item["mask"].tolist() == [True, True, True, False]
    assert not item["views"][3].any()


def test_fit_end_to_end_trains_only_the_unfrozen_blocks(tmp_path):
    frame, files = _locations(tmp_path)
    cfg = load_config(None, "tiny-scout-sniper", ["model.train_last_n_blocks=1", "train.epochs=1", "train.batch_size=4"])
    torch.manual_seed(0)
    model = create_model("tiny_convnext", num_classes=2, views=4, fusion="mean", freeze_backbone=True, train_last_n_blocks=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit = fit_end_to_end(model, frame, files, cfg, seed=0)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    changed = {k for k, v in fit.state.items() if v.dtype.is_floating_point and not torch.equal(v, before[k])}
    assert any(k.startswith("backbone.") for k in changed) and any(k.startswith("head.") for k in changed)
    assert changed <= trainable | {k for k in changed if "running" in k}
    assert fit.history[0]["val_nll"] > 0 and len(fit.history) == 1


def test_fine_tuning_prints_one_line_per_epoch_on_stderr(tmp_path, capsys):
    frame, files = _locations(tmp_path)
    cfg = load_config(None, "tiny-scout-sniper", ["model.train_last_n_blocks=1", "train.epochs=2", "train.batch_size=4"])
    torch.manual_seed(0)
    model = create_model("tiny_convnext", num_classes=2, views=4, fusion="mean", freeze_backbone=True, train_last_n_blocks=1)
    fit = fit_end_to_end(model, frame, files, cfg, seed=0)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "fine-tune epoch" in line]
    assert [line.split("epoch ")[1].split(":")[0] for line in lines] == ["1/2", "2/2"]
    assert f"{fit.history[1]['val_nll']:.3f}" in lines[1]
    assert "fine-tune" not in captured.out  # stdout stays free for --json


def test_fine_tuning_through_the_images_honours_train_patience(tmp_path, monkeypatch):
    from geolocate.train import view_heads

    frame, files = _locations(tmp_path)
    nll = iter([1.0, 1.5, 2.0, 2.5, 3.0, 3.5])  # val only gets worse after the first epoch
    monkeypatch.setattr(view_heads, "_validate_images", lambda model, loader: (next(nll), 0.5))
    cfg = load_config(None, "tiny-scout-sniper", ["model.train_last_n_blocks=1", "train.epochs=6", "train.batch_size=4",
                                                   "train.patience=2"])
    model = create_model("tiny_convnext", num_classes=2, views=4, fusion="mean", freeze_backbone=True, train_last_n_blocks=1)
    fit = fit_end_to_end(model, frame, files, cfg, seed=0)
    assert [row["epoch"] for row in fit.history] == [1, 2, 3] and fit.best_epoch == 1 and fit.stopped_early
