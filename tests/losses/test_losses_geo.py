"""Geo loss: the soft target against a brute-force loop, CE limits, gradients, config wiring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geolocate.config import TrainConfig
from geolocate.losses import GeoLoss, build_criterion, geo_soft_targets

CENTROIDS = [(48.85, 2.35), (48.87, 2.30), (48.80, 2.40), (45.76, 4.83), (43.30, 5.37)]
PHOTOS = [(48.851, 2.352), (45.70, 4.80), (48.83, 2.36)]


def _haversine_loop(lat1, lon1, lat2, lon2):
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def _soft_target_loop(photo, tau):
    d = [_haversine_loop(*photo, *c) for c in CENTROIDS]
    e = [math.exp(-(dj - min(d)) / tau) for dj in d]
    return [x / sum(e) for x in e]


@pytest.mark.parametrize("tau", [1.5, 2.5, 5.0, 50.0])
def test_soft_target_matches_brute_force(tau):
    # float64 in: float32 degrees alone move a centroid by ~0.3 m, visible at 1e-6 relative.
    got = geo_soft_targets(torch.tensor(CENTROIDS, dtype=torch.float64), torch.tensor(PHOTOS, dtype=torch.float64), tau)
    got = got.numpy()
    want = np.array([_soft_target_loop(p, tau) for p in PHOTOS])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    assert got[0].argmax() == 0 and got[1].argmax() == 3


def test_far_photos_do_not_overflow():
    far = torch.tensor([[-45.0, -170.0]])
    q = geo_soft_targets(torch.tensor(CENTROIDS), far, tau_km=0.01)
    assert torch.isfinite(q).all() and float(q.sum()) == pytest.approx(1.0)


def test_mix_one_is_plain_cross_entropy_and_weights_apply():
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 5), torch.tensor([0, 3, 2])
    plain = GeoLoss(CENTROIDS, tau_km=2.5, mix_ce=1.0)(logits, labels, torch.tensor(PHOTOS))
    torch.testing.assert_close(plain, F.cross_entropy(logits, labels))
    w = torch.tensor([0.5, 1.0, 2.0, 1.0, 0.5])
    weighted = GeoLoss(CENTROIDS, 2.5, 1.0, class_weights=w)(logits, labels, torch.tensor(PHOTOS))
    torch.testing.assert_close(weighted, F.cross_entropy(logits, labels, weight=w))


def test_blend_is_the_weighted_sum_of_both_terms():
    torch.manual_seed(1)
    logits, labels, true = torch.randn(3, 5), torch.tensor([0, 3, 2]), torch.tensor(PHOTOS)
    q = torch.tensor([_soft_target_loop(p, 2.5) for p in PHOTOS], dtype=torch.float32)
    soft = -(q * F.log_softmax(logits, 1)).sum(1).mean()
    got = GeoLoss(CENTROIDS, 2.5, 0.4)(logits, labels, true)
    torch.testing.assert_close(got, 0.4 * F.cross_entropy(logits, labels) + 0.6 * soft)


def test_gradients_finite_and_loss_decreases_with_a_step():
    torch.manual_seed(2)
    logits = torch.randn(3, 5, requires_grad=True)
    loss_fn = GeoLoss(CENTROIDS, 2.5, 0.4)
    args = (torch.tensor([0, 3, 2]), torch.tensor(PHOTOS))
    loss = loss_fn(logits, *args)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    stepped = loss_fn(logits.detach() - 0.5 * logits.grad, *args)
    assert stepped.item() < loss.detach().item()


def test_bad_arguments():
    with pytest.raises(ValueError):
        GeoLoss(CENTROIDS, tau_km=0.0, mix_ce=0.5)
    with pytest.raises(ValueError):
        GeoLoss(CENTROIDS, tau_km=1.0, mix_ce=1.5)
    with pytest.raises(ValueError):
        GeoLoss([1.0, 2.0], tau_km=1.0, mix_ce=0.5)


def test_build_criterion_from_config():
    counts = [100, 10, 50, 20, 30]
    loss = build_criterion(TrainConfig(class_weights="auto", class_weight_threshold=3.0), CENTROIDS, counts)
    assert loss.class_weights is not None and loss.mix_ce == pytest.approx(0.4)
    plain = build_criterion(TrainConfig(geo_loss=False, class_weights="off"), CENTROIDS, counts)
    assert plain.class_weights is None and plain.mix_ce == 1.0
