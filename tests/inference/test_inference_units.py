"""Torch-free pieces of predict: preprocessing, conformal radius, retrieval refinement, geodesy, GeoJSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from geolocate.evaluate.conformal import conformal_quantile, coverage, fit_radius, radius_for
from geolocate.evaluate.refine import choose_refinement
from geolocate.evaluate.retrieval import build_index, load_index, refine_positions, save_index
from geolocate.geo import destination, haversine_km, spherical_mean
from geolocate.inference.geojson import feature_collection
from geolocate.inference.preprocess import Preprocess

IMAGENET = {"input_size": (3, 48, 48), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "crop_pct": 0.875}


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(97, 61), (61, 97), (64, 64)])
def test_numpy_preprocessing_matches_torch_eval_transform(interpolation, size):
    from geolocate.data.transforms import eval_transform

    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    config = {**IMAGENET, "interpolation": interpolation}
    expected = eval_transform(config)(img).numpy()
    got = Preprocess(config)(img)
    assert got.shape == expected.shape == (3, 48, 48) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 11.0)  # 10 scores: rank ⌈11 · 0.9⌉ = 10
    assert conformal_quantile(scores, 0.9) == 10.0
    assert conformal_quantile(scores, 0.5) == 6.0  # ⌈5.5⌉ = 6
    assert math.isinf(conformal_quantile(scores[:5], 0.9))  # ⌈6 · 0.9⌉ = 6 > 5 scores


def test_banded_radius_covers_exchangeable_test_data():
    rng = np.random.default_rng(0)

    def draw(n):  # confident photos are closer: error scale shrinks with confidence
        conf = rng.uniform(0.05, 1.0, n)
        return conf, rng.exponential(1.0 / conf)

    table = fit_radius(*draw(3000), level=0.9, bands=3)
    assert len(table["edges"]) == 2 and table["radius_km"][0] > table["radius_km"][2]
    cov = coverage(*draw(5000), table)
    assert abs(cov["coverage"] - 0.9) < 0.02
    assert all(abs(c - 0.9) < 0.04 for c in cov["per_band"])
    assert radius_for(np.array([0.01, 0.99]), table) == [table["radius_km"][0], table["radius_km"][2]]


def test_few_val_photos_mean_one_band():
    table = fit_radius(np.linspace(0, 1, 30), np.arange(30.0), bands=3)
    assert table["edges"] == [] and len(table["radius_km"]) == 1


def _two_city_index():
    # Train photos in two cities 400 km apart; each city's photos share a direction in embedding space.
    rng = np.random.default_rng(0)
    a, b = np.array([48.85, 2.35]), np.array([45.76, 4.83])
    latlon = np.vstack([a + rng.normal(0, 0.01, (20, 2)), b + rng.normal(0, 0.01, (20, 2))])
    emb = np.vstack([np.tile([1.0, 0.0, 0.0], (20, 1)), np.tile([0.0, 1.0, 0.0], (20, 1))]) + rng.normal(0, 0.05, (40, 3))
    return build_index(emb, latlon, np.repeat([0, 1], 20)), a, b


def test_refinement_follows_the_look_within_the_top_cells():
    index, paris, lyon = _two_city_index()
    probs = np.array([[0.6, 0.4], [0.6, 0.4]])
    looks = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # first looks like Paris, second like Lyon
    pos = refine_positions(probs, looks, index, top_cells=2, neighbours=10)
    assert haversine_km(*pos[0], *paris) < 5 and haversine_km(*pos[1], *lyon) < 5
    # With only the top-1 cell allowed, the second photo stays in Paris (the classifier's pick).
    assert haversine_km(*refine_positions(probs[1:], looks[1:], index, top_cells=1)[0], *paris) < 5


def test_refinement_is_chosen_on_val_only_when_it_helps():
    index, paris, lyon = _two_city_index()
    probs = np.tile([0.6, 0.4], (40, 1))
    looks = np.vstack([np.tile([1.0, 0, 0], (20, 1)), np.tile([0, 1.0, 0], (20, 1))])
    truth = np.vstack([np.tile(paris, (20, 1)), np.tile(lyon, (20, 1))])
    base_err = haversine_km(paris[0], paris[1], truth[:, 0], truth[:, 1])  # the classifier says Paris for all
    assert choose_refinement(index, probs, looks, truth, base_err)["enabled"]
    perfect = np.zeros(40)
    assert not choose_refinement(index, probs, looks, truth, perfect)["enabled"]


def test_median_refinement_stays_with_the_heavier_group_of_neighbours():
    """A photo that looks like both cities, 70 % Paris by the classifier: all 40 neighbours vote, so a
    similarity × probability weighted mean would fall between the cities; the median stays in Paris."""
    from geolocate.geo import spherical_mean

    index, paris, lyon = _two_city_index()
    look, probs = np.array([[0.7, 0.7, 0.0]]), np.array([[0.7, 0.3]])
    median = refine_positions(probs, look, index, top_cells=2, neighbours=40, method="median")[0]
    assert haversine_km(*median, *paris) < 5
    weights = np.where(index.labels == 0, 0.7, 0.3)
    mean = spherical_mean(index.latlon[:, 0], index.latlon[:, 1], weights)
    assert haversine_km(*mean, *paris) > 50 and haversine_km(*mean, *lyon) > 50


def test_refinement_is_chosen_by_the_one_rule_against_the_trivial_bar():
    index, paris, lyon = _two_city_index()
    probs = np.tile([0.6, 0.4], (40, 1))
    looks = np.vstack([np.tile([1.0, 0, 0], (20, 1)), np.tile([0, 1.0, 0], (20, 1))])
    truth = np.vstack([np.tile(paris, (20, 1)), np.tile(lyon, (20, 1))])
    base_err = haversine_km(paris[0], paris[1], truth[:, 0], truth[:, 1])
    record = choose_refinement(index, probs, looks, truth, base_err, bar=(200.0, 400.0))
    assert record["enabled"] and record["method"] in ("cluster", "median", "medoid")
    assert record["val_score"]["retrieval"] < record["val_score"]["classifier"]


def test_index_round_trip_and_weights_check(tmp_path):
    from geolocate.errors import UserError

    index, _, _ = _two_city_index()
    save_index(tmp_path / "i.safetensors", index, "abc")
    back = load_index(tmp_path / "i.safetensors", "abc")
    assert back.embeddings.dtype == np.float16 and np.allclose(back.latlon, index.latlon)
    with pytest.raises(UserError, match="other weights"):
        load_index(tmp_path / "i.safetensors", "other")


def test_destination_and_weighted_mean():
    lat, lon = destination(45.0, 179.9, np.array([0, 90, 180, 270]), 100.0)
    assert np.allclose(haversine_km(45.0, 179.9, lat, lon), 100.0, atol=1e-6)
    assert -180 <= lon.min() and lon.max() <= 180  # wrapped across the antimeridian
    assert spherical_mean([0.0, 0.0], [0.0, 10.0], [3.0, 1.0])[1] == pytest.approx(2.5, abs=0.05)


def _row():
    return {"file": "a.jpg", "lat": 48.85, "lon": 2.35, "confidence": 0.5, "radius_km": 12.0, "position": "top1",
            "true_lat": 48.9, "true_lon": 2.3, "error_km": 6.6,
            "top": [{"rank": 1, "cell_id": "871fb4662ffffff", "city": "Paris", "lat": 48.85, "lon": 2.35, "prob": 0.5},
                    {"rank": 2, "cell_id": "not-h3", "city": "X", "lat": 45.0, "lon": 4.0, "prob": 0.2}]}


def test_geojson_is_lon_lat_with_closed_rings():
    doc = json.loads(json.dumps(feature_collection([_row()], {"run_id": "r"})))
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert doc["type"] == "FeatureCollection" and kinds == ["cell", "cell", "prediction", "credible_circle", "truth"]
    cell, region, point, circle, truth = doc["features"]
    ring = cell["geometry"]["coordinates"][0]
    assert cell["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 7
    assert all(0 < lon < 5 and 45 < lat < 50 for lon, lat in ring)  # [lon, lat], not [lat, lon]
    assert region["geometry"] == {"type": "Point", "coordinates": [4.0, 45.0]}
    assert point["geometry"]["coordinates"] == [2.35, 48.85] and truth["geometry"]["coordinates"] == [2.3, 48.9]
    circle_ring = np.array(circle["geometry"]["coordinates"][0])
    assert (circle_ring[0] == circle_ring[-1]).all()
    assert np.allclose(haversine_km(48.85, 2.35, circle_ring[:, 1], circle_ring[:, 0]), 12.0, atol=1e-6)


def test_geojson_polygons_follow_the_right_hand_rule():
    doc = feature_collection([_row()])
    for feature in doc["features"]:
        if feature["geometry"]["type"] == "Polygon":
            ring = feature["geometry"]["coordinates"][0]
            area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:])) / 2
            assert area > 0, feature["properties"]["kind"]  # counter-clockwise exterior (RFC 7946 §3.1.6)


def test_model_line_names_only_what_it_knows():
    from geolocate.inference.provenance import describe_model, model_line

    classes = [{"cell_id": f"c{i}", "city": None, "centroid_lat": 44.6 + i / 100, "centroid_lon": -1.2} for i in range(13)]
    meta = {"run_id": "r1", "classes": classes, "config": {"profile": None}, "model": {"name": "resnet18"},
            "provenance": {"sources": ["import"]}}
    line = model_line(describe_model(meta, "onnx"))
    assert line.startswith("model: run r1 (resnet18 via onnx), import photos, 13 cells (lon -1.20")
    named = model_line(describe_model({**meta, "config": {"profile": "v1"}, "classes": [{**c, "city": "Lyon"} for c in classes]}, "torch"))
    assert "(profile v1, resnet18 via torch)" in named and "13 cells in 1 cities" in named
