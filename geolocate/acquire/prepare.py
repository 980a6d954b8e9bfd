"""`run_prepare`: the processed copy of every photo that training reads.

Training never opens the raw downloads: each manifest photo gets a copy under
`data/processed/<id>.jpg` with its longest side at most `data.max_size`, EXIF orientation
applied, in RGB, at `data.jpeg_quality`. The run is incremental (a photo whose `processed_path`
is set and whose file exists is skipped; a row whose processed file vanished is redone), parallel
(a process pool), and safe to interrupt (files are written atomically and the manifest is
updated every few thousand photos). A raw file that is missing or does not decode is reported,
not fatal, and tried again by the next run.

A 360° capture (`is_pano`) is also cut into `data.pano_views` perspective views
(`panorama.perspective_view`), each a manifest row of its own (`<id>@<azimuth>`, `parent_id` the
capture, same sequence) that trains as a single photo and groups into four-view locations; the
capture itself is then left out of labelling (`manifest.training_photos`). A view whose file
vanished is cut again from its capture.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from PIL import Image, ImageOps

from geolocate import atomic
from geolocate.manifest import merge_manifest, read_manifest
from geolocate.config import DataConfig
from geolocate.data.images import DECODE_ERRORS, open_photo
from geolocate.console import progress
from geolocate.acquire.panorama import perspective_view, view_azimuths
from geolocate.lock import locks_data
from geolocate.paths import DataPaths, is_valid_image_id, view_id

_INLINE_BELOW = 64  # fewer photos than this: a pool costs more than it saves
_CHUNK = 8
_FLUSH_EVERY = 5000  # manifest updates during a long run, so an interrupt loses little


@dataclass
class PrepareReport:
    """What `run_prepare` did."""

    photos: int  # rows in the manifest
    processed: int  # copies written by this run
    already_done: int
    failed: dict[str, str] = field(default_factory=dict)  # image_id → reason (missing / undecodable)
    seconds: float = 0.0
    workers: int = 1
    captures_cut: int = 0  # 360° captures this run cut into views
    views_cut: int = 0  # the views it wrote (each a photo of its own from now on)

    def to_dict(self) -> dict:
        return {"photos": self.photos, "processed": self.processed, "already_done": self.already_done,
                "captures_cut": self.captures_cut, "views_cut": self.views_cut,
                "failed": len(self.failed), "failed_ids": sorted(self.failed), "failures": self.failed,
                "seconds": round(self.seconds, 3), "workers": self.workers}


def prepare_photo(raw: Path, out: Path, max_size: int, quality: int) -> tuple[int, int]:
    """Write the processed copy of `raw` to `out` (atomically); returns the raw (width, height).

    Raises:
        FileNotFoundError: no raw file. One of `DECODE_ERRORS`: it does not decode.
    """
    with open_photo(raw) as image:
        width, height = image.size
        scale = max_size / max(width, height)
        if scale < 1:
            # JPEG draft: decode at 1/2, 1/4 or 1/8 scale straight from the DCT, still ≥ the target.
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        copy = ImageOps.exif_transpose(image).convert("RGB")
    copy.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    with atomic.atomic_path(out) as tmp:
        copy.save(tmp, format="JPEG", quality=quality)
    return width, height


def photos_to_prepare(manifest: pl.DataFrame, data: DataPaths) -> pl.DataFrame:
    """Rows without a processed copy on disk (never processed, or the file is gone); a lost view
    stands for its 360° capture, which is cut again."""
    recorded = manifest["processed_path"].to_list()
    done = [bool(p) and (data.root / p).is_file() for p in recorded]
    todo = manifest.filter(~pl.Series(done, dtype=pl.Boolean))
    lost_views = todo.filter(pl.col("parent_id").is_not_null())
    if lost_views.is_empty():
        return todo
    parents = manifest.filter(pl.col("image_id").is_in(lost_views["parent_id"].unique().to_list()))
    return pl.concat([todo.filter(pl.col("parent_id").is_null()), parents]).unique("image_id", keep="first", maintain_order=True)


@locks_data("prepare")
def run_prepare(cfg: DataConfig, data: DataPaths, workers: int | None = None) -> PrepareReport:
    """Process every manifest photo not processed yet and record it in the manifest.

    Args:
        cfg: the `[data]` settings (`max_size`, `jpeg_quality`, `prepare_workers`).
        data: the data directory (manifest, raw/ and processed/).
        workers: processes (default `cfg.prepare_workers`; 0 = one per CPU core).
    """
    start = time.perf_counter()
    manifest = read_manifest(data, required=True)
    todo = photos_to_prepare(manifest, data)
    workers = workers or cfg.prepare_workers or os.cpu_count() or 1
    report = PrepareReport(photos=manifest.height, processed=0, already_done=manifest.height - todo.height, workers=workers)
    tasks = [(row["image_id"], str(data.root), cfg.max_size, cfg.jpeg_quality, _pano_task(row, cfg)) for row in todo.iter_rows(named=True)]
    rows_by_id = {row["image_id"]: row for row in todo.iter_rows(named=True)}
    updated: list[dict] = []
    try:
        for image_id, outcome in _process_all(tasks, workers):
            if isinstance(outcome, str):
                report.failed[image_id] = outcome
                continue
            updated.append(_recorded(rows_by_id[image_id], data, *outcome[:3]))
            updated.extend(_view_rows(rows_by_id[image_id], data, outcome[3]))
            report.processed += 1
            report.captures_cut += bool(outcome[3])
            report.views_cut += len(outcome[3])
            if len(updated) >= _FLUSH_EVERY:
                merge_manifest(data, pl.DataFrame(updated, schema=manifest.schema))
                updated = []
    finally:
        if updated:  # also on Ctrl-C: keep what was done
            merge_manifest(data, pl.DataFrame(updated, schema=manifest.schema))
    report.seconds = time.perf_counter() - start
    return report


def _recorded(row: dict, data: DataPaths, width: int, height: int, nbytes: int) -> dict:
    """The manifest row with its processed copy, and the raw size filled in where unknown."""
    image_id = row["image_id"]
    return {**row, "processed_path": data.relative(data.processed_photo(image_id)), "width": row["width"] or width,
            "height": row["height"] or height, "bytes": row["bytes"] or nbytes}


def _pano_task(row: dict, cfg: DataConfig) -> tuple[int, float, float | None] | None:
    """(views, field of view, heading) for a 360° capture to cut, None for a plain photo."""
    if not row["is_pano"] or cfg.pano_views == 0 or row["parent_id"] is not None:
        return None
    return cfg.pano_views, cfg.pano_fov_deg, row["compass_angle"]


def _view_rows(parent: dict, data: DataPaths, views: list[tuple[str, float | None, int, int]]) -> list[dict]:
    """Manifest rows of the views cut from `parent`: its metadata, their own id, direction and file."""
    return [{**parent, "image_id": vid, "parent_id": parent["image_id"], "compass_angle": compass, "is_pano": False,
             "camera_type": "perspective", "path": None, "processed_path": data.relative(data.processed_photo(vid)),
             "width": size, "height": size, "bytes": nbytes} for vid, compass, size, nbytes in views]


def write_views(raw: Path, data: DataPaths, image_id: str, pano: tuple[int, float, float | None], max_size: int, quality: int) -> list[tuple]:
    """Cut and write the views of the 360° capture `raw`; (view id, compass or None, side, bytes) each."""
    import numpy as np

    n_views, fov, heading = pano
    with open_photo(raw) as image:
        pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    size = max(32, min(max_size, round(pixels.shape[1] * fov / 360.0)))  # no upsampling past the capture's detail
    out = []
    for yaw, compass in view_azimuths(n_views, heading):
        vid = view_id(image_id, compass if compass is not None else yaw)
        target = data.processed_photo(vid)
        with atomic.atomic_path(target) as tmp:
            Image.fromarray(perspective_view(pixels, yaw, fov, size)).save(tmp, format="JPEG", quality=quality)
        out.append((vid, compass, size, target.stat().st_size))
    return out


def _process_one(task: tuple) -> tuple[str, tuple[int, int, int, list] | str]:
    """(image_id, (width, height, raw bytes, views cut)) or (image_id, reason it failed)."""
    image_id, root, max_size, quality, pano = task
    if not is_valid_image_id(image_id):
        return image_id, "invalid image id"
    data = DataPaths(Path(root))
    raw = data.raw_photo(image_id)
    try:
        width, height = prepare_photo(raw, data.processed_photo(image_id), max_size, quality)
        views = write_views(raw, data, image_id, pano, max_size, quality) if pano else []
    except FileNotFoundError:
        return image_id, "raw file missing"
    except DECODE_ERRORS as exc:
        return image_id, f"undecodable ({type(exc).__name__}: {exc})"
    return image_id, (width, height, raw.stat().st_size, views)


def _process_all(tasks: list[tuple], workers: int):
    """Yield results as they come, with a progress bar; a process pool when it pays off."""
    pool = None
    if workers > 1 and len(tasks) >= _INLINE_BELOW:
        # Fork before the progress bar starts its refresh thread (forking with threads is unsafe).
        pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        with progress() as bar:
            job = bar.add_task("preparing photos", total=len(tasks))
            results = pool.imap_unordered(_process_one, tasks, chunksize=_CHUNK) if pool else map(_process_one, tasks)
            for result in results:
                bar.advance(job)
                yield result
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
