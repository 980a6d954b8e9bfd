"""Download one photo to `data/raw/<image_id>.jpg`, safely, and describe it as a manifest row.

- The id was validated when the record was parsed; `DataPaths.raw_photo` checks it again.
- The photo URL from the search is used when there is one; otherwise (a photo sampled from
  an earlier run's pool) or when the server says it expired (403/404/410), the source looks
  the photo up again for a fresh URL (`PhotoSource.photo_url`). URLs are never stored.
- The body must decode as an image (Pillow verify, then a full decode: `verify` alone does not
  notice a truncated JPEG); a bad body is downloaded once more, then the photo fails. Only a good
  body is written, atomically, so no corrupt or partial file is ever kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from geolocate import atomic
from geolocate.acquire.catalog import Area
from geolocate.acquire.http import ExpiredURL, RequestFailed
from geolocate.acquire.source import PhotoSource
from geolocate.paths import DataPaths
from geolocate.schemas import MANIFEST, conform


@dataclass
class PhotoResult:
    """The outcome of one download: a manifest row, or an error."""

    image_id: str
    row: dict[str, Any] | None = None
    error: str | None = None


async def download_photo(source: PhotoSource, data: DataPaths, candidate: dict[str, Any], area: Area) -> PhotoResult:
    """Fetch, check and write one candidate's photo; never raises for a network or data problem."""
    image_id = candidate["image_id"]
    target = data.raw_photo(image_id)
    url = candidate.get("thumb_url")
    try:
        url = url or await source.photo_url(candidate)
        for _ in range(2):  # a body that does not decode is fetched once more, then given up on
            body, url = await _download(source, candidate, url)
            size = await asyncio.to_thread(store_if_image, target, body)
            if size is not None:
                row = manifest_row(candidate, area, data, size, len(body), datetime.now(timezone.utc), source.name)
                return PhotoResult(image_id, row=row)
    except RequestFailed as exc:
        return PhotoResult(image_id, error=str(exc))
    return PhotoResult(image_id, error="thumbnail: body does not decode as an image (twice); nothing kept")


def store_if_image(target: Path, body: bytes) -> tuple[int, int] | None:
    """Write `body` atomically to `target` when it decodes as an image; its (width, height), else None.

    One call so that checking and writing cost one hand-off to a worker thread.
    """
    from geolocate.data.images import decoded_size

    size = decoded_size(body, verify=True)
    if size is not None:
        atomic.write_bytes(target, body)
    return size


async def _download(source: PhotoSource, candidate: dict[str, Any], url: str) -> tuple[bytes, str]:
    try:
        return await source.photo(url), url
    except ExpiredURL:
        url = await source.photo_url(candidate)
        return await source.photo(url), url


def file_row(candidate: dict[str, Any], area: Area, data: DataPaths, source: str) -> dict[str, Any] | None:
    """The manifest row of a photo already on disk (an interrupted run wrote it but not its row)."""
    path = data.raw_photo(candidate["image_id"])
    from geolocate.data.images import decoded_size

    body = path.read_bytes()
    size = decoded_size(body, verify=True)
    if size is None:
        return None
    fetched = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return manifest_row(candidate, area, data, size, len(body), fetched, source)


def manifest_row(candidate: dict[str, Any], area: Area, data: DataPaths, size: tuple[int, int], nbytes: int, fetched_at: datetime,
                 source: str) -> dict[str, Any]:
    """A `schemas.MANIFEST` row; width/height/bytes describe the downloaded file, not the original."""
    ms = candidate.get("captured_at_ms")
    return {
        **{k: candidate.get(k) for k in ("image_id", "sequence_id", "creator_id", "creator_username", "lat", "lon", "compass_angle", "is_pano",
                                         "camera_type", "license")},
        "captured_at": datetime.fromtimestamp(ms / 1000, timezone.utc) if ms is not None else None,
        "city": area.name,
        "batch": area.batch,
        "source": source,
        "path": data.relative(data.raw_photo(candidate["image_id"])),
        "width": size[0],
        "height": size[1],
        "bytes": nbytes,
        "fetched_at": fetched_at,
        "processed_path": None,
    }


def rows_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Manifest rows as a frame with the manifest schema."""
    frame = pl.DataFrame(rows, schema_overrides={"captured_at": MANIFEST["captured_at"], "fetched_at": MANIFEST["fetched_at"]}, infer_schema_length=None)
    return conform(frame, MANIFEST)
