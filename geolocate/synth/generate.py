"""`run_synth`: plan the drives, draw every photo (in parallel), write the manifest rows.

Each photo depends only on the seed and its own index (its look comes from the appearance field
at its position, its noise from a seed derived from the index), so the data set is the same
byte for byte whatever the number of worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field

import polars as pl
from pydantic import ValidationError

from geolocate import atomic
from geolocate.acquire.catalog import batch_areas
from geolocate.manifest import merge_manifest, write_manifest
from geolocate.config import SynthConfig
from geolocate.console import progress
from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.schemas import MANIFEST, conform
from geolocate.synth.drives import DrivePlan, Shot, plan_shots
from geolocate.synth.scene import View, render_jpegs
from geolocate.synth.world import AppearanceField, looks_at
from geolocate.lock import locks_data

SOURCE = "synthetic"
_INLINE_BELOW = 200  # below this many photos a process pool costs more than it saves
_CHUNK = 16


@dataclass
class SynthReport:
    """What `run_synth` wrote."""

    photos: int
    locations: int
    sequences: int
    drives: int
    creators: int
    size: int
    seed: int
    multiview: bool
    bytes: int
    seconds: float
    removed: int = 0  # synthetic rows of an earlier, larger run that this one replaced
    cities: dict[str, int] = field(default_factory=dict)

    @property
    def photos_per_minute(self) -> float:
        return 60.0 * self.photos / max(self.seconds, 1e-9)

    def to_dict(self) -> dict:
        return {**asdict(self), "photos_per_minute": round(self.photos_per_minute, 1)}


def resolve_settings(cfg: SynthConfig, **overrides) -> SynthConfig:
    """`cfg` with the non-None overrides (CLI options) applied and validated."""
    update = {k: v for k, v in overrides.items() if v is not None}
    try:
        return SynthConfig.model_validate({**cfg.model_dump(), **update})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise UserError(f"synth.{'.'.join(map(str, error['loc']))}: bad value {error.get('input')!r} ({error['msg']})") from None


@locks_data("synth")
def run_synth(cfg: SynthConfig, data: DataPaths, workers: int | None = None, catalog: str = "fr") -> SynthReport:
    """Generate the synthetic data set described by `cfg` under `data` and merge it into the manifest.

    Args:
        cfg: the `[synth]` settings (apply CLI options first with `resolve_settings`).
        data: where photos (`raw/<id>.jpg`) and the manifest go.
        workers: render processes (default: one per CPU core; small sets render inline).
        catalog: whose areas the drives fall in (`fetch.catalog`: the US twin must not train on Paris).

    Returns:
        A `SynthReport`. Synthetic rows left by an earlier run with more photos are removed, so
        the manifest's synthetic part is exactly this data set; fetched rows are never touched.
    """
    start = time.perf_counter()
    areas = tuple(dict.fromkeys(a for b in cfg.batches for a in batch_areas(b, catalog)))  # a batch named twice counts once
    plan = DrivePlan(cfg.n_photos, cfg.photos_per_sequence, cfg.sequences_per_drive, cfg.spread_km, cfg.multiview)
    shots = plan_shots(areas, plan, cfg.seed)
    looks = looks_at(AppearanceField(cfg.seed), [s.lat for s in shots], [s.lon for s in shots])
    sizes = _render_all(_tasks(shots, looks, data, cfg), workers)
    rows = _manifest_rows(shots, sizes, cfg.size)
    merged = merge_manifest(data, rows)
    removed = _remove_stale(data, merged, set(rows["image_id"].to_list()))
    return SynthReport(
        photos=len(shots), locations=len({s.location for s in shots}), sequences=rows["sequence_id"].n_unique(),
        drives=len({s.sequence_id.rsplit("s", 1)[0] for s in shots}), creators=rows["creator_id"].n_unique(),
        size=cfg.size, seed=cfg.seed, multiview=cfg.multiview, bytes=int(sum(sizes)),
        seconds=time.perf_counter() - start, removed=removed,
        cities=dict(sorted(rows.group_by("city").len().iter_rows())),
    )


def _view(shot: Shot, index: int, cfg: SynthConfig) -> View:
    """The camera of one shot; the four views of a location share its street seed."""
    yaw = (shot.compass_angle - shot.road_heading + 180.0) % 360.0 - 180.0
    hour = shot.captured_at.hour + shot.captured_at.minute / 60.0
    return View(street_seed=(cfg.seed, 1, shot.location), photo_seed=(cfg.seed, 2, index), yaw_deg=yaw,
                compass_deg=shot.compass_angle, hour_utc=hour, two_sided=cfg.multiview)


def _tasks(shots: list[Shot], looks: list[dict], data: DataPaths, cfg: SynthConfig) -> list[tuple]:
    """One task per location (its views drawn from one street): (paths, look, views, size)."""
    tasks: list[tuple] = []
    for i, (shot, look) in enumerate(zip(shots, looks)):
        if not tasks or shots[i - 1].location != shot.location:
            tasks.append(([], look, [], cfg.size))
        tasks[-1][0].append(str(data.raw_photo(shot.image_id)))
        tasks[-1][2].append(_view(shot, i, cfg))
    return tasks


def _render_one(task: tuple) -> list[int]:
    """Draw one location's photos and write them atomically; returns their sizes in bytes."""
    paths, look, views, size = task
    jpegs = render_jpegs(look, views, size)
    for path, jpeg in zip(paths, jpegs):
        atomic.write_bytes(path, jpeg)
    return [len(jpeg) for jpeg in jpegs]


def _render_all(tasks: list[tuple], workers: int | None) -> list[int]:
    """Render every task, in order, with a progress bar (in photos); a pool when it pays off."""
    workers = workers or os.cpu_count() or 1
    sizes: list[int] = []
    pool = None
    if workers > 1 and sum(len(task[0]) for task in tasks) >= _INLINE_BELOW:
        # Fork before the progress bar starts its refresh thread (forking with threads is unsafe).
        pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        with progress() as bar:
            job = bar.add_task("drawing photos", total=sum(len(task[0]) for task in tasks))
            results = pool.imap(_render_one, tasks, chunksize=_CHUNK) if pool else map(_render_one, tasks)
            for location_sizes in results:
                sizes.extend(location_sizes)
                bar.advance(job, len(location_sizes))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return sizes


def _manifest_rows(shots: list[Shot], sizes: list[int], size: int) -> pl.DataFrame:
    rows = [
        {"image_id": s.image_id, "sequence_id": s.sequence_id, "creator_id": s.creator_id,
         "creator_username": s.creator_username, "captured_at": s.captured_at, "lat": s.lat, "lon": s.lon,
         "compass_angle": s.compass_angle, "is_pano": False, "camera_type": "perspective", "city": s.city,
         "batch": s.batch, "source": SOURCE, "path": f"raw/{s.image_id}.jpg", "width": size, "height": size,
         # Generation is the capture: fetched_at = captured_at keeps the manifest reproducible.
         "bytes": nbytes, "fetched_at": s.captured_at, "processed_path": None}
        for s, nbytes in zip(shots, sizes)
    ]
    return conform(pl.DataFrame(rows, schema_overrides={"processed_path": pl.Utf8}), MANIFEST)


def _remove_stale(data: DataPaths, merged: pl.DataFrame, keep: set[str]) -> int:
    """Drop synthetic rows (and their photos) that the new data set does not contain."""
    stale = merged.filter((pl.col("source") == SOURCE) & ~pl.col("image_id").is_in(list(keep)))
    if stale.height == 0:
        return 0
    for image_id in stale["image_id"].to_list():
        data.raw_photo(image_id).unlink(missing_ok=True)
        data.processed_photo(image_id).unlink(missing_ok=True)
    write_manifest(data, merged.filter(~pl.col("image_id").is_in(stale["image_id"].to_list())))
    return stale.height
