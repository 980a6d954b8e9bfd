"""Test-time views in evaluation (evaluate/tta.py): collected averaged, chosen on val only, reported."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch

from geolocate.data.tta import TTA_SETTINGS, n_views
from geolocate.evaluate.collect import Outputs, collect_outputs
from geolocate.evaluate.tta import CROPS, Seen, choose_seen, collect_seen

SIZE = 64


def _outputs(seed: int, n: int = 5) -> Outputs:
    rng = np.random.default_rng(seed)
    return Outputs(rng.normal(size=(n, 4)).astype(np.float32), np.arange(n) % 4, np.zeros(n), np.zeros(n), [f"p{i}" for i in range(n)])


def _scorer(scores: dict[int, float], calls: list):
    """A val score looked up by which outputs are scored (their `id`); each call is recorded."""
    def score(out: Outputs) -> dict:
        calls.append(out)
        return {"median_km": 1.0, "p90_km": 2.0, "score": scores[id(out)]}

    return score


@pytest.mark.parametrize("plain_score, tta_score, chosen", [(1.2, 1.1, "tta"), (1.1, 1.2, "plain"), (1.1, 1.1, "plain")])
def test_auto_keeps_the_side_val_scores_better_and_test_follows(plain_score, tta_score, chosen):
    val, test = Seen(_outputs(0), _outputs(1)), Seen(_outputs(2), _outputs(3))
    calls = []
    got_val, got_test, record = choose_seen("auto", val, test, _scorer({id(val.plain): plain_score, id(val.tta): tta_score}, calls))
    assert got_val is getattr(val, chosen) and got_test is getattr(test, chosen)  # test is measured on val's side
    assert sorted(map(id, calls)) == sorted([id(val.plain), id(val.tta)])  # test is never scored to choose
    assert record["enabled"] is (chosen == "tta") and record["setting"] == "auto" and record["crops"] == CROPS
    assert record["views"] == (n_views(CROPS) if chosen == "tta" else 1)
    assert record["val"]["plain"]["score"] == plain_score and record["val"]["tta"]["score"] == tta_score


@pytest.mark.parametrize("setting", ["on", "off"])
def test_on_and_off_measure_one_side_and_never_score(setting):
    side = "tta" if setting == "on" else "plain"
    val, test = Seen(**{side: _outputs(0)}), Seen(**{side: _outputs(1)})
    got_val, got_test, record = choose_seen(setting, val, test, lambda out: pytest.fail("scored without a choice"))
    assert got_val is getattr(val, side) and got_test is getattr(test, side)
    assert record["enabled"] is (setting == "on") and record["val"] == {}


class _Photos(torch.utils.data.Dataset):
    """Photos as the eval transforms give them, with labels and positions: [C, H, W] or [V, C, H, W] under `transform`."""

    def __init__(self, images: list, transform=None) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        from torchvision.transforms import v2 as T

        image = self.transform(self.images[i]) if self.transform else T.Compose([T.CenterCrop(SIZE)])(self.images[i])
        return {"image": image, "label": torch.tensor(i % 3), "lat": torch.tensor(45.0, dtype=torch.float64),
                "lon": torch.tensor(2.0, dtype=torch.float64), "image_id": f"p{i}"}


@pytest.fixture(scope="module")
def tiny():
    from geolocate.models import create_model

    torch.manual_seed(0)
    return create_model("tiny_resnet", num_classes=3, pretrained=False).eval()


def test_collected_views_are_each_photos_mean(tiny):
    """A loader of views [B, V, C, H, W]: one row per photo, the mean of its views' logits and embeddings."""
    from geolocate.data.tta import tta_views

    images = [torch.randn(3, 68, 90, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    loader = torch.utils.data.DataLoader(_Photos(images, lambda im: tta_views(im, SIZE)), batch_size=2)
    got = collect_outputs(tiny, loader, torch.device("cpu"), views=n_views(3))
    with torch.no_grad():
        want = [tiny.forward_with_features(tta_views(im, SIZE)) for im in images]
    assert got.logits.shape == (5, 3) and got.image_ids == [f"p{i}" for i in range(5)]
    assert np.allclose(got.logits, np.stack([w[0].mean(0).numpy() for w in want]), atol=1e-5)
    assert np.allclose(got.embeddings, np.stack([w[1].mean(0).numpy() for w in want]), atol=1e-5)
    centre = collect_outputs(tiny, torch.utils.data.DataLoader(_Photos(images), batch_size=2), torch.device("cpu"))
    assert not np.allclose(centre.logits, got.logits, atol=1e-4)


@pytest.mark.parametrize("setting, sides", [("off", ("plain",)), ("on", ("tta",)), ("auto", ("plain", "tta"))])
def test_collect_seen_measures_what_the_setting_asks(tiny, monkeypatch, setting, sides):
    """off never builds the views' loader; on never runs the single crop; auto runs both on the same photos."""
    from PIL import Image

    import geolocate.evaluate.tta as tta
    from geolocate.data.transforms import eval_transform

    rng = np.random.default_rng(0)
    photos = [Image.fromarray(rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)) for _ in range(4)]
    preprocessing = {"input_size": (3, SIZE, SIZE), "mean": (0.5,) * 3, "std": (0.5,) * 3, "crop_pct": 0.9}
    loader = torch.utils.data.DataLoader(_Photos(photos, eval_transform(preprocessing)), batch_size=12)
    built, real = [], tta.tta_loader
    monkeypatch.setattr(tta, "tta_loader", lambda *a, **k: built.append(a) or real(*a, **k))
    seen = collect_seen(tiny, loader, torch.device("cpu"), setting, preprocessing)
    assert tuple(side for side in ("plain", "tta") if getattr(seen, side) is not None) == sides
    assert len(built) == ("tta" in sides)
    if setting == "auto":
        assert seen.plain.image_ids == seen.tta.image_ids and not np.allclose(seen.plain.logits, seen.tta.logits, atol=1e-4)
    with pytest.raises(ValueError, match="auto, on, off"):
        collect_seen(tiny, loader, torch.device("cpu"), "sometimes", preprocessing)


def test_the_views_loader_keeps_the_photos_and_the_rows_per_batch(tiny):
    from geolocate.evaluate.tta import tta_loader

    images = [torch.zeros(3, 70, 100)] * 13
    loader = torch.utils.data.DataLoader(_Photos(images, lambda im: im[:, :SIZE, :SIZE]), batch_size=12)
    views = tta_loader(loader, {"input_size": (3, SIZE, SIZE), "mean": (0.5,) * 3, "std": (0.5,) * 3, "crop_pct": 0.9})
    assert views.dataset is not loader.dataset and views.dataset.images is loader.dataset.images
    assert views.batch_size == 12 // n_views(CROPS)
    assert loader.dataset.transform(images[0]).shape == (3, SIZE, SIZE)  # the original loader is untouched


def test_eval_tta_is_a_config_setting_with_the_modules_values():
    from geolocate.config import EvalConfig, load_config
    from geolocate.errors import UserError

    assert get_args(EvalConfig.model_fields["tta"].annotation) == TTA_SETTINGS
    assert EvalConfig().tta == "auto"
    assert load_config(None, None, ["eval.tta=off"]).eval.tta == "off"
    with pytest.raises(UserError, match="eval.tta"):
        load_config(None, None, ["eval.tta=sometimes"])


def test_report_says_what_val_chose_and_its_figures():
    from geolocate.evaluate.tables import tta_lines

    val = {"plain": {"median_km": 1.68, "p90_km": 4.48, "score": 0.9}, "tta": {"median_km": 1.64, "p90_km": 2.97, "score": 0.6}}
    on = tta_lines({"setting": "auto", "enabled": True, "crops": 3, "views": 6, "val": val})[0]
    assert "**on** (6 views: 3 crops and their mirror images)" in on
    assert "chosen on val: one crop 1.68 km (score 0.90), 6 views 1.64 km (score 0.60)" in on
    off = tta_lines({"setting": "off", "enabled": False, "crops": 3, "views": 1, "val": {}})[0]
    assert "**off** (one centre crop)" in off and "eval.tta = off" in off
    assert tta_lines(None) == []
