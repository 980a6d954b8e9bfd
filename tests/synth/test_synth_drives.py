"""Drives, sequences, creators, compass angles and the four-view layout (planning only: no drawing)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from geolocate.acquire.catalog import batch_areas
from geolocate.geo import haversine_km
from geolocate.paths import is_valid_image_id
from geolocate.synth.drives import DrivePlan, plan_shots

AREAS = batch_areas("01") + batch_areas("02")


def _bearing(lat1, lon1, lat2, lon2) -> float:
    dx = (lon2 - lon1) * np.cos(np.radians(lat1))
    return float(np.degrees(np.arctan2(dx, lat2 - lat1)) % 360)


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.fixture(scope="module")
def shots():
    return plan_shots(AREAS, DrivePlan(2000, photos_per_sequence=12, sequences_per_drive=3, spread_km=6.0), seed=5)


def test_ids_are_unique_digit_strings_and_count_is_exact(shots):
    ids = [s.image_id for s in shots]
    assert len(ids) == 2000 == len(set(ids)) and all(is_valid_image_id(i) for i in ids)


def test_every_point_is_inside_its_city_bbox(shots):
    boxes = {a.name: a.bbox for a in AREAS}
    assert {s.city for s in shots} == set(boxes)  # every city gets drives
    for s in shots:
        min_lon, min_lat, max_lon, max_lat = boxes[s.city]
        assert min_lat <= s.lat <= max_lat and min_lon <= s.lon <= max_lon


def test_sequences_stay_in_one_drive_creator_and_day(shots):
    by_sequence = defaultdict(list)
    for s in shots:
        by_sequence[s.sequence_id].append(s)
    for members in by_sequence.values():
        assert len({(m.creator_id, m.creator_username, m.city, m.captured_at.date()) for m in members}) == 1
        assert len(members) <= 12
    drives = defaultdict(set)
    for s in shots:
        drives[s.sequence_id.rsplit("s", 1)[0]].add(s.sequence_id)
    assert max(len(v) for v in drives.values()) == 3


def test_consecutive_photos_are_tens_of_metres_apart_facing_the_road(shots):
    steps, gaps = [], []
    for a, b in zip(shots, shots[1:]):
        if a.sequence_id == b.sequence_id:
            steps.append(haversine_km(a.lat, a.lon, b.lat, b.lon) * 1000)
            if steps[-1] > 5:
                gaps.append(_angle_gap(a.compass_angle, _bearing(a.lat, a.lon, b.lat, b.lon)))
            assert b.captured_at > a.captured_at
    assert 15 < np.median(steps) < 50 and max(steps) < 80
    assert np.median(gaps) < 10  # the compass follows the road, with a few degrees of noise


def test_multiview_locations_have_cardinal_views_from_one_spot():
    plan = DrivePlan(2000, photos_per_sequence=12, sequences_per_drive=3, spread_km=6.0, multiview=True)
    shots = plan_shots(AREAS, plan, seed=1)
    locations = defaultdict(list)
    for s in shots:
        locations[s.location].append(s)
    assert len(locations) == 500
    full = 0
    for views in locations.values():
        cardinals = [round(v.compass_angle / 90) % 4 for v in views]
        assert len(set(cardinals)) == len(views) >= 1  # never two views of one direction
        assert all(_angle_gap(v.compass_angle, 90 * c) < 12 for v, c in zip(views, cardinals))
        assert len({v.sequence_id for v in views}) == 1
        assert max(haversine_km(views[0].lat, views[0].lon, v.lat, v.lon) * 1000 for v in views) < 15
        full += len(views) == 4
    assert 0.6 * len(locations) < full < len(locations)  # most complete, some views missing
    anchors = [views[0] for views in locations.values()]
    steps = [haversine_km(a.lat, a.lon, b.lat, b.lon) * 1000 for a, b in zip(anchors, anchors[1:]) if a.sequence_id == b.sequence_id]
    assert min(steps) > 45  # well beyond views.radius_m (30 m): grouping by proximity cannot mix two stops
