"""The appearance field: smooth over tens of metres, varied over kilometres; pixels reveal the place."""

from __future__ import annotations

import h3
import numpy as np
import polars as pl
from PIL import Image

from geolocate.geo import haversine_km, offset_m
from geolocate.synth.scene import View, render
from geolocate.synth.world import PARAMS, AppearanceField, looks_at


def _mean_param_change(field, lat, lon, north_m, east_m) -> float:
    a = field.raw(lat, lon)
    b = field.raw(*offset_m(lat, lon, north_m, east_m))
    return float(np.abs(np.tanh(a) - np.tanh(b)).mean())


def test_field_is_smooth_at_street_scale_and_varies_at_km_scale():
    field = AppearanceField(seed=3)
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(43, 50, 200), rng.uniform(-1, 7, 200)
    near = _mean_param_change(field, lat, lon, 40.0, 0.0)
    cell_apart = _mean_param_change(field, lat, lon, 0.0, 6000.0)
    assert near < 0.05 and cell_apart > 4 * near


def test_field_values_span_the_unit_interval_and_depend_on_the_seed():
    lat, lon = np.linspace(45, 48, 500), np.linspace(2, 5, 500)
    values = AppearanceField(0)(lat, lon)
    assert set(values) == set(PARAMS)
    assert all(0 <= v.min() and v.max() <= 1 and v.max() - v.min() > 0.5 for v in values.values())
    assert not np.allclose(AppearanceField(1).raw(lat, lon), AppearanceField(0).raw(lat, lon))


def test_four_views_of_a_location_show_different_content():
    look = looks_at(AppearanceField(0), [48.85], [2.35])[0]
    views = [np.asarray(render(look, View((0, 1, 7), (0, 2, k), yaw, yaw, 11.0, True), 64), dtype=float)
             for k, yaw in enumerate((0.0, 90.0, 180.0, 270.0))]
    diffs = [np.abs(views[i] - views[j]).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(diffs) > 5.0


def _features(root, paths) -> np.ndarray:
    """Tiny colour layout (8x8) plus HSV histograms: what a linear model can read off a photo."""
    rows = []
    for path in paths:
        image = Image.open(root / path).convert("RGB")
        layout = np.asarray(image.resize((8, 8), Image.BILINEAR), dtype=np.float32).ravel() / 255
        hsv = np.asarray(image.convert("HSV").resize((32, 32)), dtype=np.float32).reshape(-1, 3) / 256
        hist = np.concatenate([np.histogram(hsv[:, c], bins=12, range=(0, 1))[0] for c in range(3)]) / 1024
        rows.append(np.concatenate([layout, hist]))
    return np.stack(rows)


def test_a_linear_model_learns_the_h3_cell_from_pixels(synth_data):
    """Ridge regression on pixels beats the majority class by far on held-out sequences (H3 res 6)."""
    manifest = pl.read_parquet(synth_data / "manifest.parquet")
    cells = np.array([h3.latlng_to_cell(a, b, 6) for a, b in zip(manifest["lat"], manifest["lon"])])
    classes, y = np.unique(cells, return_inverse=True)
    sequences = manifest["sequence_id"].to_numpy()
    held_out = set(np.random.default_rng(0).choice(np.unique(sequences), len(np.unique(sequences)) // 5, replace=False))
    test = np.isin(sequences, list(held_out))
    x = _features(synth_data, manifest["path"])
    x = (x - x[~test].mean(0)) / (x[~test].std(0) + 1e-6)
    onehot = np.eye(len(classes))[y]
    weights = np.linalg.solve(x[~test].T @ x[~test] + np.eye(x.shape[1]), x[~test].T @ onehot[~test])
    predicted = (x[test] @ weights).argmax(1)
    majority = np.bincount(y[~test]).argmax()
    accuracy, majority_rate = np.mean(predicted == y[test]), np.mean(y[test] == majority)
    assert accuracy > majority_rate + 0.25 and accuracy > 3 * majority_rate
    lat, lon = manifest["lat"].to_numpy(), manifest["lon"].to_numpy()
    centroid = {c: (lat[~test][y[~test] == c].mean(), lon[~test][y[~test] == c].mean()) for c in np.unique(y[~test])}
    guess = np.array([centroid.get(c, centroid[majority]) for c in predicted])
    error = haversine_km(lat[test], lon[test], guess[:, 0], guess[:, 1])
    baseline = haversine_km(lat[test], lon[test], *centroid[majority])
    assert np.median(error) < 0.25 * np.median(baseline)
