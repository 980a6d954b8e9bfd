"""Where and when the synthetic photos are taken: drives, sequences, creators, times, compass.

A drive is one creator on one capture day, driving a path inside a catalog city: consecutive
shots some tens of metres apart, the heading drifting slowly with an occasional turn at a
crossing. The drive is cut into `sequences_per_drive` sequences of `photos_per_sequence` shots,
as mapillary_tools cuts a long capture, so neighbouring sequences share a street (the leakage a
sequence-grouped split cannot see and a drive-grouped one can). In multi-view mode a shot is a
location seen four times (north, east, south, west) from the same spot within a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from geolocate.acquire.catalog import Area
from geolocate.geo import offset_m

# Ids are a fixed 19-digit prefix plus a counter: digit strings (valid file names), unique within
# a data set, far above any Mapillary id seen so far, and the same for the same seed and size.
IMAGE_ID_BASE = 9_100_000_000_000_000_000
CREATOR_ID_BASE = 9_200_000_000
_KIND_WEIGHT = {"metropolis": 3.0, "medium": 2.0, "rural": 1.0}
_FIRST_DAY = datetime(2019, 1, 1, tzinfo=timezone.utc)
CARDINALS = (0.0, 90.0, 180.0, 270.0)
VIEW_DROP_RATE = 0.06  # share of multi-view views missing, as when a capture is interrupted
_STEP_M = (20.0, 45.0)  # between consecutive photos of a drive (a photo every ~2.5 s in town)
# Four-view stops are further apart than twice `views.radius_m` (30 m), so grouping photos into
# locations by proximity cannot mix a stop's views with its neighbour's when one view is missing.
_MULTIVIEW_STEP_M = (65.0, 95.0)


@dataclass(frozen=True)
class Shot:
    """One photo to draw: manifest fields plus what the renderer needs (road heading, location)."""

    image_id: str
    sequence_id: str
    creator_id: str
    creator_username: str
    captured_at: datetime
    lat: float
    lon: float
    compass_angle: float
    road_heading: float
    city: str
    batch: str
    location: int  # shots of one multi-view location share it (and their scene's 3-D layout)


@dataclass(frozen=True)
class DrivePlan:
    """The knobs of `plan_shots` (from `cfg.synth`)."""

    n_photos: int
    photos_per_sequence: int
    sequences_per_drive: int
    spread_km: float
    multiview: bool = False


def plan_shots(areas: tuple[Area, ...], plan: DrivePlan, seed: int) -> list[Shot]:
    """All shots of the data set, in id order; deterministic for `seed`.

    Multi-view: `n_photos // 4` locations (at least one), `photos_per_sequence // 4` locations a
    sequence, each emitting up to four views (a few are dropped, never all of a location's).
    """
    rng = np.random.default_rng([seed, 0xD417E])
    per_seq = max(1, plan.photos_per_sequence // 4) if plan.multiview else plan.photos_per_sequence
    n_points = max(1, plan.n_photos // 4) if plan.multiview else plan.n_photos
    per_drive = per_seq * plan.sequences_per_drive
    n_drives = math.ceil(n_points / per_drive)
    interval_s = 10.0 if plan.multiview else 2.5  # four-view stops take longer
    weights = np.array([_KIND_WEIGHT.get(a.kind, 1.0) for a in areas])
    # Every city gets drives (round-robin first), the rest follow the city kinds' weights.
    extra = rng.choice(len(areas), size=max(0, n_drives - len(areas)), p=weights / weights.sum())
    city_of_drive = np.concatenate([np.arange(min(n_drives, len(areas))), extra]).astype(int)
    shots: list[Shot] = []
    location = 0
    for drive, city in enumerate(city_of_drive):
        take = min(per_drive, n_points - drive * per_drive)
        points = _drive_points(areas[city], take, plan.spread_km, _MULTIVIEW_STEP_M if plan.multiview else _STEP_M, rng)
        creator = _creator(areas[city], int(rng.integers(0, 4)), city)
        start = _FIRST_DAY + timedelta(days=int(rng.integers(0, 6 * 365)), hours=float(rng.uniform(6, 17)))
        for k, (lat, lon, heading) in enumerate(points):
            seq, at = k // per_seq, start + timedelta(seconds=interval_s * k + 90.0 * (k // per_seq))
            common = dict(sequence_id=f"synth{seed % 1000:03d}d{drive:05d}s{seq}", captured_at=at,
                          city=areas[city].name, batch=areas[city].batch, road_heading=heading, **creator)
            if plan.multiview:
                shots += _views(lat, lon, common, location, rng)
            else:
                compass = (heading + rng.normal(0, 4.0)) % 360
                shots.append(Shot(image_id="", lat=lat, lon=lon, compass_angle=compass, location=location, **common))
            location += 1
    return [_with_id(shot, i) for i, shot in enumerate(shots)]


def _with_id(shot: Shot, index: int) -> Shot:
    return Shot(**{**shot.__dict__, "image_id": str(IMAGE_ID_BASE + index)})


def _creator(area: Area, k: int, city: int) -> dict[str, str]:
    """A few creators per city, each driving several days (so drives and creators differ)."""
    number = city * 4 + k
    slug = "".join(ch for ch in area.name.lower() if ch.isalnum())[:12]
    return {"creator_id": str(CREATOR_ID_BASE + number), "creator_username": f"synth_{slug}_{k}"}


def _drive_points(area: Area, n: int, spread_km: float, step_m: tuple[float, float],
                  rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """(lat, lon, heading°) of `n` consecutive shots of one drive inside `area`'s bbox, `step_m` apart."""
    min_lon, min_lat, max_lon, max_lat = area.bbox
    c_lat, c_lon = area.center
    radius_m = 1000 * spread_km * rng.uniform(0, 1)  # denser towards the centre, as real coverage is
    bearing = rng.uniform(0, 2 * math.pi)
    lat, lon = (float(v) for v in offset_m(c_lat, c_lon, radius_m * math.cos(bearing), radius_m * math.sin(bearing)))
    lat, lon = _clip(lat, lon, area.bbox, margin=0.1)
    heading = float(rng.choice([0.0, 90.0, 180.0, 270.0]) + rng.normal(0, 15))
    points = []
    for _ in range(n):
        points.append((lat, lon, heading % 360))
        if rng.uniform() < 0.06:  # a crossing: turn left or right
            heading += float(rng.choice([-90.0, 90.0]))
        heading += float(rng.normal(0, 3))
        step = float(rng.uniform(*step_m))
        nlat, nlon = (float(v) for v in offset_m(lat, lon, step * math.cos(math.radians(heading)), step * math.sin(math.radians(heading))))
        if not (min_lat < nlat < max_lat and min_lon < nlon < max_lon):
            # The city edge: head back towards the centre and step from where we are.
            heading = math.degrees(math.atan2(c_lon - lon, c_lat - lat)) + float(rng.normal(0, 20))
            nlat, nlon = _clip(*(float(v) for v in offset_m(lat, lon, step * math.cos(math.radians(heading)),
                                                             step * math.sin(math.radians(heading)))), area.bbox, margin=0.0)
        lat, lon = nlat, nlon
    return points


def _clip(lat: float, lon: float, bbox: tuple[float, float, float, float], margin: float = 0.02) -> tuple[float, float]:
    """Keep a point inside the bbox, `margin` (a share of the box) away from its edges."""
    min_lon, min_lat, max_lon, max_lat = bbox
    dlat, dlon = margin * (max_lat - min_lat), margin * (max_lon - min_lon)
    return min(max(lat, min_lat + dlat), max_lat - dlat), min(max(lon, min_lon + dlon), max_lon - dlon)


def _views(lat: float, lon: float, common: dict, location: int, rng: np.random.Generator) -> list[Shot]:
    """The four cardinal views of one location, a few metres and a second apart; some dropped."""
    keep = rng.uniform(size=4) >= VIEW_DROP_RATE
    if not keep.any():
        keep[int(rng.integers(0, 4))] = True
    views = []
    for v, cardinal in enumerate(CARDINALS):
        jitter_lat, jitter_lon = (float(x) for x in offset_m(lat, lon, rng.normal(0, 2.0), rng.normal(0, 2.0)))
        compass = (cardinal + rng.normal(0, 3.0)) % 360
        if keep[v]:
            at = common["captured_at"] + timedelta(seconds=0.25 * v)
            views.append(Shot(image_id="", lat=jitter_lat, lon=jitter_lon, compass_angle=compass,
                              location=location, **{**common, "captured_at": at}))
    return views
