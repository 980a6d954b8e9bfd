"""Test-time augmentation (geolocate/data/tta.py): the views, the average, the choice, torch/ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geolocate.data.tta import average_views, crop_offsets, flatten_views, n_views, tta_batch, tta_views, use_tta

SIZE = 64


@pytest.fixture(scope="module")
def tiny():
    from geolocate.models import create_model

    torch.manual_seed(0)
    return create_model("tiny_resnet", num_classes=7, pretrained=False).eval()


def _photos(n=3, height=68, width=90, seed=0):
    """Resized, normalised, uncropped photos [C, H, W] (the even margins keep the mirror exact)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, height, width)).astype(np.float32) for _ in range(n)]


def _torch_tta(model, photos, crops=3):
    with torch.no_grad():
        logits, emb = model.forward_with_features(tta_batch([torch.from_numpy(p) for p in photos], SIZE, crops))
    return average_views(logits, n_views(crops)).numpy(), average_views(emb, n_views(crops)).numpy()


def test_the_centre_view_is_the_eval_transforms_centre_crop():
    from torchvision.transforms import v2 as T

    for height, width in ((68, 90), (69, 91), (90, 68), (64, 64)):
        image = torch.arange(3 * height * width, dtype=torch.float32).reshape(3, height, width)
        views = tta_views(image, SIZE, crops=3)
        assert views.shape == (6, 3, SIZE, SIZE)
        assert torch.equal(views[0], T.CenterCrop(SIZE)(image)) and torch.equal(views[1], views[0].flip(-1))
        top = crop_offsets(height, width, SIZE)[0][0]
        assert torch.equal(views[2], image[:, top:top + SIZE, :SIZE])  # the left end
        assert torch.equal(views[4], image[:, top:top + SIZE, width - SIZE:])  # the right end
        assert torch.equal(views[5], views[4].flip(-1))


def test_numpy_and_torch_give_the_same_views():
    photo = _photos(1, 69, 91)[0]
    assert np.array_equal(tta_views(photo, SIZE).astype(np.float32), tta_views(torch.from_numpy(photo), SIZE).numpy())


def test_crop_offsets_and_refusals():
    assert crop_offsets(68, 90, 64) == [(2, 13), (2, 0), (2, 26)]
    assert crop_offsets(68, 90, 64, crops=1) == [(2, 13)]
    with pytest.raises(ValueError, match="no 64×64 crop"):
        crop_offsets(60, 90, 64)
    with pytest.raises(ValueError, match="crops is one of 1, 3"):
        n_views(2)


def test_average_views_groups_each_photos_rows():
    values = np.arange(12, dtype=np.float64).reshape(6, 2)  # two photos × three views
    assert np.array_equal(average_views(values, 3), [[2.0, 3.0], [8.0, 9.0]])
    assert torch.equal(average_views(torch.from_numpy(values), 3), torch.tensor([[2.0, 3.0], [8.0, 9.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="not whole photos"):
        average_views(values, 4)
    batched = np.zeros((2, 6, 3, 8, 8))
    assert flatten_views(batched).shape == (12, 3, 8, 8)


def test_a_mirrored_photo_gets_the_same_averaged_answer(tiny):
    photos = _photos()
    mirrored = [np.ascontiguousarray(p[..., ::-1]) for p in photos]
    (logits, emb), (logits_m, emb_m) = _torch_tta(tiny, photos), _torch_tta(tiny, mirrored)
    assert np.allclose(logits, logits_m, atol=1e-5) and np.allclose(emb, emb_m, atol=1e-5)
    plain = tiny.forward_with_features(torch.from_numpy(np.stack([p[:, 2:66, 13:77] for p in photos])))[0].detach().numpy()
    assert not np.allclose(plain, logits, atol=1e-4)  # the views do change the answer


@pytest.mark.parametrize("setting, plain, tta, expected", [
    ("on", None, None, True), ("off", None, None, False),
    ("auto", 1.2, 1.1, True), ("auto", 1.1, 1.2, False), ("auto", 1.1, 1.1, False),
])
def test_use_tta_follows_the_setting_and_val(setting, plain, tta, expected):
    assert use_tta(setting, plain, tta) is expected


def test_use_tta_refuses_auto_without_scores_and_unknown_settings():
    with pytest.raises(ValueError, match="needs the val score"):
        use_tta("auto")
    with pytest.raises(ValueError, match="auto, on, off"):
        use_tta("sometimes")


def test_tta_parity_between_torch_and_onnx(tiny, tmp_path):
    """The torch path (tensors, torch flip) and the ONNX path (numpy views, onnxruntime) agree after averaging."""
    import onnxruntime as ort

    from geolocate.artifacts.onnx_export import MAX_LOGIT_DIFF, _export

    graph = tmp_path / "tiny.onnx"
    _export(tiny, torch.zeros(2, 3, SIZE, SIZE), graph)
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    photos = _photos(4, 69, 91, seed=1)
    for crops in (1, 3):
        want_logits, want_emb = _torch_tta(tiny, photos, crops)
        logits, emb = session.run(["logits", "embedding"], {"image": tta_batch(photos, SIZE, crops)})
        logits, emb = average_views(logits, n_views(crops)), average_views(emb, n_views(crops))
        assert logits.shape == (4, 7) and np.abs(logits - want_logits).max() <= MAX_LOGIT_DIFF
        assert np.abs(emb - want_emb).max() <= 1e-4
        assert (np.argsort(-logits, 1)[:, :5] == np.argsort(-want_logits, 1)[:, :5]).all()


def test_the_centre_view_is_what_predict_feeds_today():
    """The ONNX/torch predict path (`inference.Preprocess`) crops the resized photo where the first view is."""
    from PIL import Image

    from geolocate.inference.preprocess import Preprocess, _shorter_side_to

    pre = Preprocess({"input_size": [3, SIZE, SIZE], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3], "crop_pct": 0.95})
    rng = np.random.default_rng(2)
    for w, h in ((123, 91), (91, 123), (100, 100)):
        img = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        resized = np.asarray(img.resize(_shorter_side_to(img.size, pre.resize), pre.resample), dtype=np.float32)
        uncropped = (resized.transpose(2, 0, 1) / np.float32(255.0) - pre.mean) / pre.std
        assert np.array_equal(tta_views(uncropped, SIZE, crops=1)[0], pre(img))


def test_preprocess_uncropped_is_what_the_views_are_cut_from():
    from PIL import Image

    from geolocate.inference.preprocess import Preprocess

    pre = Preprocess({"input_size": [3, SIZE, SIZE], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3], "crop_pct": 0.9})
    rng = np.random.default_rng(3)
    for w, h in ((123, 91), (91, 123)):
        img = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        uncropped = pre.uncropped(img)
        assert min(uncropped.shape[1:]) == pre.resize and uncropped.dtype == np.float32
        assert np.array_equal(tta_views(uncropped, SIZE)[0], pre(img))


def test_the_eval_tta_transform_gives_the_eval_transforms_crop_first():
    """The loader evaluation measures the views with: its first view is the eval transform's centre crop."""
    import pickle

    from PIL import Image

    from geolocate.data.transforms import eval_transform, eval_tta_transform

    config = {"input_size": (3, SIZE, SIZE), "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.3, 0.25), "crop_pct": 0.875}
    img = Image.fromarray(np.random.default_rng(4).integers(0, 256, size=(70, 100, 3), dtype=np.uint8))
    views = eval_tta_transform(config, crops=3)(img)
    assert type(views) is torch.Tensor and views.shape == (6, 3, SIZE, SIZE)
    assert torch.allclose(views[0], eval_transform(config)(img), atol=1e-6)
    assert torch.equal(views[1], views[0].flip(-1)) and not torch.equal(views[2], views[0])
    assert pickle.loads(pickle.dumps(eval_tta_transform(config)))(img).shape == views.shape  # loader workers pickle it

