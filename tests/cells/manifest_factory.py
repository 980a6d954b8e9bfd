"""Schema-conformant manifests for the cells, split and sanity tests (no network, no images).

Photos come in sequences: a creator drives from a random start near a city centre, one photo
every `step_m` metres along a heading; `sequences_per_drive` consecutive sequences of a creator
share a capture day (one drive). Everything is drawn from `seed`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from geolocate.manifest import write_manifest
from geolocate.geo import offset_m
from geolocate.paths import DataPaths
from geolocate.schemas import MANIFEST, conform

CITIES = (("Paris", 48.8566, 2.3522, "01"), ("Lyon", 45.764, 4.8357, "01"), ("Rennes", 48.1173, -1.6778, "02"))
T0 = datetime(2024, 5, 1, 8, tzinfo=timezone.utc)


def manifest_frame(
    n_sequences: int = 30,
    per_sequence: int = 12,
    seed: int = 0,
    cities=CITIES,
    spread_m: float = 3000.0,
    step_m: float = 8.0,
    sequences_per_drive: int = 3,
    n_creators: int = 5,
) -> pl.DataFrame:
    """A manifest (schema MANIFEST) of `n_sequences` sequences of `per_sequence` photos."""
    rng = np.random.default_rng(seed)
    seq = np.repeat(np.arange(n_sequences), per_sequence)
    step = np.tile(np.arange(per_sequence), n_sequences)
    city = rng.integers(0, len(cities), n_sequences)[seq]
    start_n, start_e = rng.normal(0, spread_m, (2, n_sequences))
    heading = rng.uniform(0, 2 * np.pi, n_sequences)
    north = start_n[seq] + np.cos(heading[seq]) * step * step_m
    east = start_e[seq] + np.sin(heading[seq]) * step * step_m
    c_lat = np.array([c[1] for c in cities])[city]
    c_lon = np.array([c[2] for c in cities])[city]
    lat, lon = offset_m(c_lat, c_lon, north, east)
    drive = seq // sequences_per_drive
    creator = drive % n_creators
    when = [T0 + timedelta(days=int(d), minutes=int(s) * 15, seconds=int(k) * 2) for d, s, k in zip(drive, seq, step)]
    n = len(seq)
    frame = pl.DataFrame(
        {
            "image_id": [str(10_000_000 + i) for i in range(n)],
            "sequence_id": [f"seq{s:06d}" for s in seq],
            "creator_id": [str(1000 + c) for c in creator],
            "creator_username": [f"user{c}" for c in creator],
            "captured_at": when,
            "lat": lat,
            "lon": lon,
            "compass_angle": np.degrees(heading[seq]) % 360,
            "is_pano": [False] * n,
            "camera_type": ["perspective"] * n,
            "city": [cities[c][0] for c in city],
            "batch": [cities[c][3] for c in city],
            "source": ["test"] * n,
            "path": [f"raw/{10_000_000 + i}.jpg" for i in range(n)],
            "width": [64] * n,
            "height": [48] * n,
            "bytes": [1000] * n,
            "fetched_at": [T0] * n,
        }
    )
    return conform(frame, MANIFEST)


# Cities with dense streets, and lone photos elsewhere on Earth (a world-wide set's sparse tail).
WORLD = (("Paris", 48.8566, 2.3522, "01"), ("Tokyo", 35.68, 139.69, "01"), ("Lima", -12.05, -77.04, "01"),
         ("Nairobi", -1.29, 36.82, "01"))
LONE = ((64.14, -21.94), (-54.8, -68.3), (21.3, -157.86), (-33.9, 151.2), (78.2, 15.6))


def world_manifest(seed: int = 0) -> pl.DataFrame:
    """40 sequences of 6 photos in four far-apart cities, plus five lone photos (one sequence each)."""
    dense = manifest_frame(n_sequences=40, per_sequence=6, seed=seed, cities=WORLD, spread_m=20_000.0)
    lone = dense.head(len(LONE)).with_columns(
        image_id=pl.Series([str(20_000_000 + i) for i in range(len(LONE))]),
        path=pl.Series([f"raw/{20_000_000 + i}.jpg" for i in range(len(LONE))]),
        sequence_id=pl.Series([f"lone{i}" for i in range(len(LONE))]),
        lat=pl.Series([p[0] for p in LONE]), lon=pl.Series([p[1] for p in LONE]), city=pl.lit("elsewhere"),
    )
    return pl.concat([dense, lone])


def write(root: Path, frame: pl.DataFrame) -> DataPaths:
    """Write `frame` as the manifest under `root` (a data directory) and return its DataPaths."""
    data = DataPaths(Path(root))
    write_manifest(data, frame)
    return data
