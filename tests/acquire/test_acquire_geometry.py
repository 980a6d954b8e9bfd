"""Tiling, box keys, the rate limiter and the spread-out sampling order: pure pieces of fetch."""

from __future__ import annotations

import asyncio
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geolocate.acquire.ratelimit import RateLimiter
from geolocate.acquire.sampling import spread_order
from geolocate.acquire.tiling import box_key, split_box, tile_bbox


@settings(max_examples=60, deadline=None)
@given(
    lon=st.floats(-179, 170), lat=st.floats(-80, 80),
    w=st.floats(0.001, 0.2), h=st.floats(0.001, 0.2), tile=st.sampled_from([0.01, 0.005, 0.0025]),
)
def test_tiles_cover_the_box_and_respect_the_size_limit(lon, lat, w, h, tile):
    bbox = (lon, lat, lon + w, lat + h)
    tiles = tile_bbox(bbox, tile)
    assert all(t[2] - t[0] <= tile + 1e-7 and t[3] - t[1] <= tile + 1e-7 for t in tiles)
    covered = sum((t[2] - t[0]) * (t[3] - t[1]) for t in tiles)
    assert covered == pytest.approx(w * h, rel=1e-4, abs=1e-9)
    assert min(t[0] for t in tiles) == pytest.approx(bbox[0], abs=1e-7)
    assert max(t[3] for t in tiles) == pytest.approx(bbox[3], abs=1e-7)
    assert len(tiles) == math.ceil(w / tile - 1e-9) * math.ceil(h / tile - 1e-9)


def test_split_gives_four_quadrants_of_the_box():
    box = (2.30, 48.85, 2.31, 48.86)
    quads = split_box(box)
    assert len(set(quads)) == 4
    assert sum((q[2] - q[0]) * (q[3] - q[1]) for q in quads) == pytest.approx(1e-4)
    assert {q[0] for q in quads} == {2.30, 2.305} and {q[3] for q in quads} == {48.855, 48.86}


def test_box_key_is_the_api_bbox_order_and_stable():
    assert box_key((2.3, 48.85, 2.31, 48.86)) == "2.3,48.85,2.31,48.86"
    assert box_key(tile_bbox((2.3, 48.85, 2.31, 48.86), 0.01)[0]) == "2.3,48.85,2.31,48.86"


def test_rate_limiter_spaces_requests_after_a_one_second_burst():
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds):
        waits.append(seconds)

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)  # 2 per second, burst 2

    async def burst():
        return [await limiter.acquire() for _ in range(6)]

    got = asyncio.run(burst())
    assert got == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])
    now[0] = 100.0  # a long pause refills the bucket, capped at the burst size
    assert asyncio.run(burst())[:3] == pytest.approx([0, 0, 0.5])


def _pool(points):
    return pl.DataFrame(
        [{"image_id": str(i), "sequence_id": seq, "lon": lon, "lat": lat} for i, (seq, lon, lat) in enumerate(points)]
    )


def test_spread_order_takes_every_bin_before_a_second_photo_of_any():
    # Bin A holds 50 photos of one sequence, bins B and C one photo each: a first-N sample would be all A.
    points = [("a", 2.301 + i * 1e-5, 48.851) for i in range(50)] + [("b", 2.315, 48.851), ("c", 2.305, 48.865)]
    order = spread_order(_pool(points), 0.01, seed=0)
    assert sorted(order, key=int) == [str(i) for i in range(52)]
    assert {"50", "51"} <= set(order[:3])


def test_spread_order_alternates_sequences_within_a_bin_and_is_seeded():
    points = [("s1", 2.301, 48.851)] * 10 + [("s2", 2.302, 48.852)] * 10
    pool = _pool(points)
    order = spread_order(pool, 0.01, seed=1)
    first = [int(i) < 10 for i in order[:6]]
    assert first.count(True) == 3 and first.count(False) == 3
    assert order == spread_order(pool, 0.01, seed=1)
    assert order != spread_order(pool, 0.01, seed=2)
