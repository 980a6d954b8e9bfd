"""Class weights: inverse frequency, square root, mean 1, and the auto/on/off rule."""

from __future__ import annotations

import pytest
import torch

from geolocate.losses import class_weights, imbalance_ratio, resolve_class_weights


def test_inverse_frequency_normalised_to_mean_one():
    w = class_weights([10, 20, 40], sqrt=False)
    # 1/10 : 1/20 : 1/40 = 4 : 2 : 1, mean 7/3 → 12/7, 6/7, 3/7
    torch.testing.assert_close(w, torch.tensor([12 / 7, 6 / 7, 3 / 7]))
    assert float(w.mean()) == pytest.approx(1.0)


def test_square_root_is_gentler():
    w = class_weights([100, 400], sqrt=True)
    # 1/10 : 1/20 = 2 : 1 → 4/3, 2/3
    torch.testing.assert_close(w, torch.tensor([4 / 3, 2 / 3]))


def test_empty_class_gets_zero_and_does_not_skew_the_others():
    w = class_weights([10, 0, 40], sqrt=False)
    assert float(w[1]) == 0.0
    torch.testing.assert_close(w[[0, 2]], torch.tensor([1.6, 0.4]))
    assert imbalance_ratio([10, 0, 40]) == 4.0


@pytest.mark.parametrize(
    ("counts", "mode", "on"),
    [
        ([10, 30], "auto", False),  # ratio 3 is not above the threshold 3
        ([10, 31], "auto", True),
        ([10, 1000], "off", False),
        ([10, 10], "on", True),
    ],
)
def test_resolve_modes(counts, mode, on):
    w = resolve_class_weights(counts, mode=mode, threshold=3.0, sqrt=False)
    assert (w is not None) == on
    if on:
        assert w.shape == (len(counts),) and w.dtype == torch.float32


def test_bad_inputs():
    with pytest.raises(ValueError):
        resolve_class_weights([1, 2], mode="sometimes")
    with pytest.raises(ValueError):
        class_weights([0, 0])
    with pytest.raises(ValueError):
        class_weights([])
    with pytest.raises(ValueError):
        class_weights([3, -1])
