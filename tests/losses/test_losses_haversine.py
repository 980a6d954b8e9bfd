"""Torch haversine: agrees with the numpy version, exact zeros, finite gradients everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geolocate.geo import haversine_km
from geolocate.losses import HaversineLoss, haversine_km_torch, pairwise_haversine_km_torch


def test_matches_numpy_haversine():
    rng = np.random.default_rng(0)
    lat1, lat2 = rng.uniform(-80, 80, (2, 50))
    lon1, lon2 = rng.uniform(-179, 179, (2, 50))
    got = haversine_km_torch(*(torch.tensor(a) for a in (lat1, lon1, lat2, lon2))).numpy()
    np.testing.assert_allclose(got, haversine_km(lat1, lon1, lat2, lon2), rtol=1e-9, atol=1e-9)


def test_paris_lyon_distance():
    # Notre-Dame to Lyon's Place Bellecour: about 392 km as the crow flies.
    d = haversine_km_torch(*(torch.tensor(v, dtype=torch.float64) for v in (48.853, 2.3499, 45.7578, 4.8320)))
    assert 385 < float(d) < 400


def test_zero_distance_is_exactly_zero_with_finite_gradient():
    pred = torch.tensor([[48.85, 2.35], [43.3, 5.37]], dtype=torch.float64, requires_grad=True)
    loss = HaversineLoss()(pred, pred.detach().clone())
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite_near_zero_and_at_antipode(dtype):
    pred = torch.tensor([[10.0, 20.0], [10.0, 20.0 + 1e-9], [0.0, 0.0]], dtype=dtype, requires_grad=True)
    true = torch.tensor([[10.0, 20.0], [10.0, 20.0], [0.0, 180.0]], dtype=dtype)
    dist = HaversineLoss(reduction="none")(pred, true)
    dist.sum().backward()
    assert torch.isfinite(dist).all() and torch.isfinite(pred.grad).all()
    assert dist[2].item() == pytest.approx(np.pi * 6371.0088, rel=1e-5)


def test_gradient_points_towards_the_truth():
    pred = torch.tensor([[48.0, 2.0]], dtype=torch.float64, requires_grad=True)
    true = torch.tensor([[48.1, 2.0]], dtype=torch.float64)
    HaversineLoss()(pred, true).backward()
    assert pred.grad[0, 0] < 0  # increasing lat moves towards the truth, so the loss falls


def test_reductions_and_pairwise_shape():
    a = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    pair = pairwise_haversine_km_torch(a, b)
    assert pair.shape == (2, 3)
    assert float(pair[0, 0]) == 0.0
    per = HaversineLoss(reduction="none")(a, b[:2])
    assert float(HaversineLoss(reduction="sum")(a, b[:2])) == pytest.approx(float(per.sum()))
    assert float(HaversineLoss()(a, b[:2])) == pytest.approx(float(per.mean()))
    with pytest.raises(ValueError):
        HaversineLoss(reduction="max")
