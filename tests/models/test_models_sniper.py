"""The sniper regressor: shapes, starts at the centroid, learns an offset, wraps longitudes."""

from __future__ import annotations

import torch

from geolocate.models.sniper import SniperRegressor


def test_shape_and_identity_at_start():
    sniper = SniperRegressor(in_dim=16, num_regions=5, hidden=32)
    offsets = sniper(torch.randn(8, 16), torch.randint(0, 5, (8,)), torch.rand(8))
    assert offsets.shape == (8, 2)
    assert torch.equal(offsets, torch.zeros(8, 2))  # untrained: predicts the region centroid


def test_learns_a_region_dependent_offset():
    torch.manual_seed(0)
    sniper = SniperRegressor(in_dim=8, num_regions=3, hidden=32, dropout=0.0, offset_scale_deg=0.5)
    region = torch.randint(0, 3, (64,))
    target = torch.tensor([[0.3, -0.2], [-0.4, 0.1], [0.0, 0.5]])[region]
    features, confidence = torch.randn(64, 8), torch.rand(64)
    optimiser = torch.optim.Adam(sniper.parameters(), lr=1e-2)
    with torch.no_grad():
        start = float(((sniper(features, region, confidence) - target) ** 2).mean())
    for _ in range(150):
        optimiser.zero_grad()
        loss = ((sniper(features, region, confidence) - target) ** 2).mean()
        loss.backward()
        optimiser.step()
    assert float(loss.detach()) < start / 20


def test_apply_offset_wraps_longitude_and_clamps_latitude():
    centroids = torch.tensor([[45.0, 179.5], [89.5, -179.0]])
    moved = SniperRegressor.apply_offset(centroids, torch.tensor([[1.0, 1.0], [1.0, -2.0]]))
    assert torch.allclose(moved, torch.tensor([[46.0, -179.5], [90.0, 179.0]]))


def test_kwargs_rebuild_the_same_module():
    sniper = SniperRegressor(in_dim=12, num_regions=7, blocks=3, offset_scale_deg=2.0)
    again = SniperRegressor(**sniper.model_kwargs)
    again.load_state_dict(sniper.state_dict(), strict=True)
    assert float(again.offset_scale) == 2.0
