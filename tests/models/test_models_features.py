"""The frozen-feature cache: same path as `geolocate embed`, reused, invalidated by new weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from geolocate.models import create_model
from geolocate.models import features as features_module
from geolocate.models.features import FeatureCache, embed_images


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    files = {}
    for i in range(5):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(path)
        files[str(100 + i)] = path
    files["999"] = tmp_path / "missing.jpg"
    return files


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("tiny_convnext", num_classes=3, views=4, fusion="mean")


def test_embed_images_matches_the_backbone_and_reports_bad_files(photos):
    from geolocate.data.images import load_rgb
    from geolocate.data.transforms import eval_transform

    model = _model().eval()
    files = list(photos.values())
    feats, failed = embed_images(model, files, batch_size=2)
    assert feats.shape == (6, model.view_dim) and failed == [(5, f"{files[5]}: no such file")]
    image = eval_transform(model.data_config)(load_rgb(files[0], 64))[None]
    with torch.no_grad():
        assert torch.allclose(feats[0], model.backbone(image)[0], atol=1e-5)


def test_cache_is_reused_and_new_weights_get_a_new_file(tmp_path, photos, monkeypatch):
    calls = []
    real = features_module.embed_images
    monkeypatch.setattr(features_module, "embed_images", lambda m, f, *a: calls.append(len(f)) or real(m, f, *a))
    model = _model(0)
    rows, feats = FeatureCache(tmp_path / "features", "tiny_convnext", model).features(model, photos, 4)
    assert sorted(rows) == ["100", "101", "102", "103", "104"]  # the unreadable photo is left out
    again, feats2 = FeatureCache(tmp_path / "features", "tiny_convnext", model).features(model, photos, 4)
    assert calls == [6] and again == rows and torch.equal(feats, feats2)
    other = _model(1)
    cache = FeatureCache(tmp_path / "features", "tiny_convnext", other)
    rows3, feats3 = cache.features(other, photos, 4)
    assert calls == [6, 6] and not torch.allclose(feats3[rows3["100"]], feats[rows["100"]])
    assert len(list((tmp_path / "features" / "tiny_convnext").glob("*.safetensors"))) == 2


def _expected_rows(model, photos, rows, feats):
    """Each id's cached row equals the embedding of that id's own photo."""
    ids = sorted(rows)
    truth, _ = embed_images(model, [photos[i] for i in ids], batch_size=4)
    return all(torch.allclose(feats[rows[i]], truth[k], atol=1e-5) for k, i in enumerate(ids))


def test_ids_live_in_the_tensor_file_so_one_rename_publishes_both(tmp_path, photos):
    model = _model(0)
    cache = FeatureCache(tmp_path / "features", "tiny_convnext", model)
    cache.features(model, photos, 4)
    files = sorted(p.name for p in (tmp_path / "features" / "tiny_convnext").iterdir())
    assert files == [cache.stem.name + ".safetensors"]  # no separate index that a crash could leave behind
    ids, feats, failed = cache.load()
    assert len(ids) == feats.shape[0] and failed == ["999"]


@pytest.mark.parametrize("tear", ["more_rows_than_ids", "legacy_index_next_to_tensor", "truncated"])
def test_a_torn_cache_is_rebuilt_never_misaligned(tmp_path, photos, tear):
    from safetensors.torch import save_file

    model = _model(0)
    cache = FeatureCache(tmp_path / "features", "tiny_convnext", model)
    first = {k: photos[k] for k in ("100", "101")}
    cache.features(model, first, 4)
    ids, feats, failed = cache.load()
    path = cache.stem.with_suffix(".safetensors")
    if tear == "more_rows_than_ids":  # a newer tensor carrying an older id list
        junk = torch.randn(3, feats.shape[1])
        meta = {"format": "geolocate.features", "fingerprint": cache.fingerprint, "image_ids": '["101", "100"]'}
        save_file({"features": torch.cat([junk, feats])}, str(path), metadata=meta)
    elif tear == "legacy_index_next_to_tensor":  # the old two-file layout, torn between the writes
        save_file({"features": torch.randn(4, feats.shape[1])}, str(path))
        cache.stem.with_suffix(".json").write_text('{"fingerprint": "%s", "image_ids": ["100", "101"]}' % cache.fingerprint)
    else:
        path.write_bytes(path.read_bytes()[:40])
    assert cache.load()[0] == []
    rows, feats = cache.features(model, photos, 4)
    assert sorted(rows) == ["100", "101", "102", "103", "104"]
    assert _expected_rows(model, photos, rows, feats)
    ids, stored, _ = cache.load()
    assert len(ids) == stored.shape[0] == 6


def test_embedding_shows_a_progress_bar_on_stderr(photos, monkeypatch, capsys):
    monkeypatch.setenv("GEOLOCATE_PROGRESS", "1")  # a bar even though the test's stderr is no terminal
    embed_images(_model().eval(), list(photos.values()), batch_size=2)
    captured = capsys.readouterr()
    assert "embedding 6 photos" in captured.err and "6/6" in captured.err
    assert "embedding" not in captured.out  # stdout stays free for --json


def test_test_time_view_features_are_the_mean_of_the_views_and_cached_apart(tmp_path, photos):
    from geolocate.data.images import load_rgb
    from geolocate.data.transforms import eval_tta_transform

    model = _model().eval()
    plain_rows, plain = FeatureCache(tmp_path, "tiny_convnext", model).features(model, photos, 4)
    rows, feats = FeatureCache(tmp_path, "tiny_convnext", model, crops=3).features(model, photos, 4)
    views = eval_tta_transform(model.data_config, crops=3)(load_rgb(photos["100"], 64))  # [6, 3, S, S]
    with torch.no_grad():
        assert torch.allclose(feats[rows["100"]], model.backbone(views).mean(0), atol=1e-5)
    assert not torch.allclose(feats[rows["100"]], plain[plain_rows["100"]], atol=1e-4)
    names = sorted(p.name for p in (tmp_path / "tiny_convnext").glob("*.safetensors"))
    assert len(names) == 2 and names[1].endswith("-tta3.safetensors")  # both kinds kept side by side
    again, reread = FeatureCache(tmp_path, "tiny_convnext", model).load()[:2]
    assert torch.equal(reread[again.index("100")], plain[plain_rows["100"]])  # the one-crop file was not replaced
