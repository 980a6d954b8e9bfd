"""Leakage audit: shared sequences and drives, and near-duplicates found on the grid."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from geolocate.geo import haversine_km, offset_m
from geolocate.split.audit import audit, buffer_train, near_duplicates, shared_keys

LAT0, LON0 = 48.8566, 2.3522


def photos(rows):
    """rows: (seq, north_m, east_m, split) → the frame the audit reads."""
    lat, lon = offset_m(LAT0, LON0, [r[1] for r in rows], [r[2] for r in rows])
    return pl.DataFrame({
        "image_id": [str(i) for i in range(len(rows))],
        "seq": [r[0] for r in rows],
        "drive": [f"c/{r[0][:1]}" for r in rows],
        "lat": lat, "lon": lon,
        "split": [r[3] for r in rows],
    })


def test_near_duplicates_on_a_hand_built_street():
    frame = photos([
        ("a1", 0, 0, "train"),
        ("b1", 10, 0, "test"),     # 10 m from a1, another sequence: near-duplicate
        ("b2", 0, 40, "test"),     # 40 m from a1: not near
        ("c1", 500, 0, "train"),
        ("c1", 505, 0, "test"),    # 5 m, but the same sequence (cannot happen in a real split): ignored
        ("d1", 1000, 24, "train"),
        ("e1", 1000, 0, "test"),   # 24 m, likely across a grid-cell boundary: near-duplicate
        ("f1", 2000, 0, "val"),
        ("g1", 2003, 0, "test"),   # 3 m from a val photo only: not train leakage
    ])
    out = near_duplicates(frame, 25.0)
    assert out == {"near_m": 25.0, "test_photos": 5, "with_train_neighbour": 2, "share": 0.4}
    assert near_duplicates(frame, 0.0)["with_train_neighbour"] == 0  # 0 turns the check off


def test_the_buffer_drops_only_train_photos_next_to_held_out_ones():
    frame = photos([
        ("a1", 0, 0, "train"),
        ("b1", 10, 0, "test"),     # a1 is 10 m away, another sequence: a1 goes
        ("c1", 500, 0, "train"),
        ("c1", 505, 0, "test"),    # the same sequence: c1's train photo stays
        ("d1", 1000, 0, "train"),
        ("f1", 1003, 0, "val"),    # next to val too: d1 goes
        ("g1", 3000, 0, "train"),  # alone: stays
    ])
    kept, dropped = buffer_train(frame, 25.0)
    assert dropped == 2 and kept["image_id"].to_list() == ["1", "2", "3", "5", "6"]
    assert near_duplicates(kept, 25.0)["with_train_neighbour"] == 0
    assert buffer_train(frame, 0.0) == (frame, 0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), near_m=st.sampled_from([5.0, 25.0, 60.0]))
def test_the_grid_agrees_with_brute_force(seed, near_m):
    rng = np.random.default_rng(seed)
    n = 200
    north, east = rng.uniform(0, 400, n), rng.uniform(0, 400, n)
    seqs = rng.integers(0, 30, n).astype(str)
    splits = rng.choice(["train", "val", "test"], n, p=[0.6, 0.1, 0.3])
    frame = photos(list(zip(seqs, north, east, splits)))
    lat, lon = frame["lat"].to_numpy(), frame["lon"].to_numpy()
    test, train = np.flatnonzero(splits == "test"), np.flatnonzero(splits == "train")
    dist_m = haversine_km(lat[test, None], lon[test, None], lat[None, train], lon[None, train]) * 1000
    other = seqs[test, None] != seqs[None, train]
    close = (dist_m <= near_m) & other
    ambiguous = (np.abs(dist_m - near_m) < 1e-3) & other  # chord vs arc differ by far less than a millimetre
    expected = int(close.any(axis=1).sum())
    got = near_duplicates(frame, near_m)["with_train_neighbour"]
    assert abs(got - expected) <= int(ambiguous.any(axis=1).sum())


def test_shared_sequences_and_drives_are_counted():
    frame = photos([("a1", 0, 0, "train"), ("a1", 5, 0, "test"), ("a2", 0, 0, "val"), ("b1", 0, 0, "train")])
    assert shared_keys(frame, "seq") == 1
    assert shared_keys(frame, "drive") == 1  # drive "c/a" holds a1 (train, test) and a2 (val)
    report = audit(frame, 25.0)
    assert report["sequences_shared"] == 1 and report["drives_shared"] == 1
