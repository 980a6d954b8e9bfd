"""Predict with test-time views (sidecar `tta`): torch/ONNX parity, one batched forward, off means off.

The checkpoint is a tiny network with random weights over real H3 cells around Paris, exported to
ONNX: made in seconds, and its answers are a function of its pixels like any trained model's.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from geolocate.data.tta import average_views, n_views, tta_batch
from geolocate.errors import UserError
from tests.fakes.models import CITIES, classes_around, count_forward_rows

ON = {"setting": "on", "enabled": True, "crops": 3}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """`<folder>/model` with its ONNX graph; predict averages 6 views (sidecar tta on), temperature and position fitted."""
    import torch

    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.artifacts.onnx_export import export_onnx
    from geolocate.models import create_model

    folder = tmp_path_factory.mktemp("tta_model")
    classes = classes_around(CITIES, 3)
    torch.manual_seed(0)
    model = create_model("tiny_resnet", num_classes=len(classes), pretrained=False)
    with torch.no_grad():  # a random head is nearly uniform: sharpen it so views and engines can differ visibly
        model.head.weight.mul_(40.0)
    radius = {"level": 0.9, "edges": [0.5], "radius_km": [12.0, 3.0], "n_val": 40}
    save_checkpoint(folder / "model", model, {"classes": classes, "radius": radius, "temperature": 1.3,
                                              "position": "weighted", "weighted_topk": 3, "tta": ON})
    export_onnx(folder / "model")
    return folder / "model"


def _with_tta(checkpoint, tmp_path, tta):
    """A copy of the checkpoint (graph included) whose sidecar says `tta` (None: no key, an older evaluation)."""
    for src in checkpoint.parent.glob("model.*"):
        shutil.copyfile(src, tmp_path / src.name)
    sidecar = json.loads((tmp_path / "model.json").read_text())
    sidecar.pop("tta")
    (tmp_path / "model.json").write_text(json.dumps(sidecar if tta is None else {**sidecar, "tta": tta}))
    return tmp_path / "model"


def _photos(n=4, seed=0):
    """Photos of several shapes (landscape, portrait, square): their uncropped sizes differ, their views do not.

    Smooth random scenes (coarse noise enlarged), so the left, centre and right crops see different things.
    """
    rng = np.random.default_rng(seed)
    sizes = [(180, 134), (97, 131), (120, 120), (150, 90)]
    coarse = [Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)) for _ in range(n)]
    return [c.resize(size, Image.Resampling.BICUBIC) for c, size in zip(coarse, (sizes * n)[:n])]


def _probs(rows) -> np.ndarray:
    return np.array([[c["prob"] for c in sorted(r["top"], key=lambda c: c["cell_id"])] for r in rows])


def test_tta_parity_between_torch_and_onnx_predictors(checkpoint):
    """The same photos through both engines: same views, same averaged probabilities, positions and radius."""
    from geolocate.inference.predictor import load_predictor

    answers = {}
    for engine in ("onnx", "torch"):
        predictor = load_predictor(checkpoint, engine=engine)
        assert predictor.engine == engine and predictor.views == n_views(3)
        answers[engine] = predictor.predict_items(_photos(), top=9)[0]
    onnx, torch_rows = answers["onnx"], answers["torch"]
    assert np.abs(_probs(onnx) - _probs(torch_rows)).max() <= 1e-4
    for a, b in zip(onnx, torch_rows):
        assert [c["cell_id"] for c in a["top"]] == [c["cell_id"] for c in b["top"]]
        assert a["lat"] == pytest.approx(b["lat"], abs=1e-5) and a["lon"] == pytest.approx(b["lon"], abs=1e-5)
        assert a["radius_km"] == b["radius_km"] and a["position"] == b["position"] == "weighted"


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_every_photos_views_go_through_one_forward_and_are_averaged(checkpoint, monkeypatch, engine):
    """B photos → one pass of B × 6 rows, whose logits averaged per photo are what the rows report."""
    import torch

    from geolocate.artifacts.checkpoint import load_checkpoint
    from geolocate.evaluate.metrics import softmax
    from geolocate.inference.predictor import load_predictor

    predictor = load_predictor(checkpoint, engine=engine)
    rows = count_forward_rows(monkeypatch, type(predictor))
    photos = _photos(3)
    answers = predictor.predict_items(photos, top=9, batch_size=8)[0]
    assert rows == [3 * n_views(3)]
    model, meta = load_checkpoint(checkpoint)
    views = tta_batch([torch.from_numpy(predictor.preprocess.uncropped(p)) for p in photos], predictor.preprocess.size, 3)
    with torch.no_grad():
        logits = average_views(model.eval().forward_with_features(views)[0], n_views(3)).numpy()
    want = softmax(logits, meta["temperature"])
    order = np.argsort([c["cell_id"] for c in meta["classes"]], kind="stable")
    assert np.abs(_probs(answers) - want[:, order]).max() <= 1e-4


@pytest.mark.parametrize("tta", [None, {"setting": "auto", "enabled": False, "crops": 3}])
def test_without_tta_predict_runs_one_crop_per_photo(checkpoint, tmp_path, monkeypatch, tta):
    """A sidecar that says off (or predates TTA) costs nothing more: no uncropped photo, B rows a pass."""
    from geolocate.inference.predictor import load_predictor
    from geolocate.inference.preprocess import Preprocess

    stem = _with_tta(checkpoint, tmp_path, tta)
    monkeypatch.setattr(Preprocess, "uncropped", lambda self, img: pytest.fail("views were cut with TTA off"))
    for engine in ("onnx", "torch"):
        predictor = load_predictor(stem, engine=engine)
        with monkeypatch.context() as patch:
            rows = count_forward_rows(patch, type(predictor))
            predictor.predict_items(_photos(3), batch_size=8)
        assert predictor.views == 1 and rows == [3]


def test_views_change_the_answer(checkpoint, tmp_path):
    """The averaged answer is not the centre crop's (else the wiring would be untested)."""
    from geolocate.inference.predictor import load_predictor

    with_views = load_predictor(checkpoint, engine="onnx").predict_items(_photos(), top=9)[0]
    plain = load_predictor(_with_tta(checkpoint, tmp_path, None), engine="onnx").predict_items(_photos(), top=9)[0]
    assert np.abs(_probs(with_views) - _probs(plain)).max() > 1e-3


def test_a_mirrored_photo_gets_the_same_answer(checkpoint, tmp_path):
    """The views are closed under mirroring: with even crop margins the mirror image is placed at the same point
    (one centre crop is not: the network itself is not mirror-symmetric)."""
    from geolocate.inference.predictor import load_predictor

    photo = _photos(1)[0]  # 180 × 134 → 90 × 67: horizontal margins of 26 and 13, both even
    pair = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    rows = load_predictor(checkpoint, engine="onnx").predict_items(pair, top=9)[0]
    assert np.abs(_probs(rows[:1]) - _probs(rows[1:])).max() <= 1e-4
    assert rows[0]["lat"] == pytest.approx(rows[1]["lat"], abs=1e-6) and rows[0]["lon"] == pytest.approx(rows[1]["lon"], abs=1e-6)
    plain = load_predictor(_with_tta(checkpoint, tmp_path, None), engine="onnx").predict_items(pair, top=9)[0]
    assert np.abs(_probs(plain[:1]) - _probs(plain[1:])).max() > 1e-3


@pytest.mark.parametrize("tta, field", [({"enabled": "yes", "crops": 3}, "tta.enabled"), ({"enabled": True, "crops": 2}, "tta.crops")])
def test_a_tampered_tta_record_is_refused_in_one_line(checkpoint, tmp_path, tta, field):
    """Both engines validate the sidecar in `PhotoPredictor`; torch here, since an ONNX session opened
    before the refusal would live on in the kept traceback (with its threads) after the test."""
    from geolocate.inference.predictor import load_predictor

    with pytest.raises(UserError, match=f"bad sidecar field '{field}'") as caught:
        load_predictor(_with_tta(checkpoint, tmp_path, tta), engine="torch")
    assert "\n" not in str(caught.value)


def test_the_onnx_engine_refuses_a_tampered_sidecar_before_it_opens_a_session(checkpoint, tmp_path, monkeypatch):
    import onnxruntime

    from geolocate.inference.predictor import load_predictor

    def no_session(*args, **kwargs):
        raise AssertionError("a session was opened for a sidecar that is refused")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    with pytest.raises(UserError, match="bad sidecar field 'tta.crops'"):
        load_predictor(_with_tta(checkpoint, tmp_path, {"enabled": True, "crops": 2}), engine="onnx")
