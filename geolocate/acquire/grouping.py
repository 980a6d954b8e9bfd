"""Sequences for photos that arrive without one: same camera, close in time, close in space.

A split is leakage-free only if near-identical shots of one walk or drive stay on one side, and
a folder of phone photos says nothing about walks. `group_sequences` rebuilds them: photos are
ordered by (camera, capture time, order key) and a photo continues the previous photo's sequence
when the camera is the same, the capture-time gap is at most `max_gap_s` (photos without a time
continue only photos without one) and the two are at most `max_distance_m` apart. Used by
`geolocate import` and by any table of locations given without sequences.
"""

from __future__ import annotations

import polars as pl

from geolocate.geo import haversine_km


def group_sequences(photos: pl.DataFrame, max_gap_s: float, max_distance_m: float, *, key: str = "image_id", prefix: str = "seq:") -> pl.Series:
    """A sequence id per row of `photos` (same order as the input).

    Args:
        photos: columns `camera` (str, may be null), `captured_at` (datetime, may be null), `lat`,
            `lon`, and `order` (a tie-breaker, e.g. the file path, giving the shooting order
            when times are missing).
        max_gap_s: longest capture-time gap inside one sequence, in seconds.
        max_distance_m: longest step between two consecutive photos of one sequence, in metres.
        key: the column naming each row (unique); a sequence is named after its first row.
        prefix: prepended to that name, e.g. 'seq:local:3f2a…'.
    """
    if photos.is_empty():
        return pl.Series("sequence_id", [], dtype=pl.Utf8)
    ranked = photos.with_row_index("_row").sort(["camera", "captured_at", "order"], nulls_last=True)
    rows = ranked.to_dicts()
    ids: list[str] = []
    for prev, row in zip([None, *rows[:-1]], rows):
        if prev is None or not _continues(prev, row, max_gap_s, max_distance_m):
            ids.append(f"{prefix}{row[key]}")
        else:
            ids.append(ids[-1])
    out = pl.DataFrame({"_row": ranked["_row"], "sequence_id": ids}).sort("_row")
    return out["sequence_id"]


def _continues(prev: dict, row: dict, max_gap_s: float, max_distance_m: float) -> bool:
    if prev["camera"] != row["camera"]:
        return False
    t0, t1 = prev["captured_at"], row["captured_at"]
    if (t0 is None) != (t1 is None) or (t0 is not None and abs((t1 - t0).total_seconds()) > max_gap_s):
        return False
    return float(haversine_km(prev["lat"], prev["lon"], row["lat"], row["lon"])) * 1000.0 <= max_distance_m
