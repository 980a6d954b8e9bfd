"""Sequences rebuilt from camera, capture time and distance."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from geolocate.acquire.grouping import group_sequences

T0 = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)


def _photos(rows):
    return pl.DataFrame([{"image_id": f"p{i}", "order": f"{i:03d}", "camera": c, "captured_at": t, "lat": lat, "lon": 2.0}
                         for i, (c, t, lat) in enumerate(rows)], schema_overrides={"captured_at": pl.Datetime("us", "UTC")})


def test_time_gap_distance_and_camera_each_start_a_sequence():
    step = 50 / 111_320  # 50 m of latitude
    rows = [("A", T0, 48.0), ("A", T0 + timedelta(seconds=30), 48.0 + step),  # together
            ("A", T0 + timedelta(seconds=120), 48.0 + 2 * step),  # 90 s gap: new
            ("A", T0 + timedelta(seconds=130), 48.01),  # ~1 km jump: new
            ("B", T0 + timedelta(seconds=131), 48.01),  # other camera: new
            (None, None, 50.0), (None, None, 50.0 + step)]  # no time: by order and distance
    ids = group_sequences(_photos(rows), 60, 100).to_list()
    assert ids[0] == ids[1] == "seq:p0" and len({ids[1], ids[2], ids[3], ids[4]}) == 4 and ids[5] == ids[6] == "seq:p5"


def test_thresholds_are_parameters():
    rows = [("A", T0, 48.0), ("A", T0 + timedelta(seconds=90), 48.0)]
    assert group_sequences(_photos(rows), 60, 100).n_unique() == 2
    assert group_sequences(_photos(rows), 120, 100).n_unique() == 1
