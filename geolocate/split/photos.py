"""Are the manifest's photos on disk, and do they decode? (used by `geolocate sanity`)"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from geolocate.data.images import decodes
from geolocate.paths import DataPaths


@dataclass
class PhotoCheck:
    """Photos checked, and the image ids found missing or undecodable."""

    checked: int
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)


def photo_paths(manifest: pl.DataFrame, data: DataPaths) -> list[tuple[str, Path | None]]:
    """(image_id, file) per photo: the processed copy when there is one, else the raw download.

    The file is None when the manifest names neither (e.g. clean-raw ran before prepare).
    """
    rel = pl.coalesce(
        pl.when(pl.col("processed_path") != "").then(pl.col("processed_path")),
        pl.when(pl.col("path") != "").then(pl.col("path")),
    )
    rows = manifest.select("image_id", rel.alias("file")).iter_rows()
    return [(image_id, data.root / f if f else None) for image_id, f in rows]


def check_photos(manifest: pl.DataFrame, data: DataPaths, decode: bool = True, workers: int | None = None) -> PhotoCheck:
    """Check every manifest photo exists and (unless `decode` is False) decodes.

    Decoding runs in threads: Pillow releases the GIL while it decodes.
    """
    paths = photo_paths(manifest, data)
    present = [(i, p) for i, p in paths if p is not None and p.is_file()]
    present_ids = {i for i, _ in present}
    result = PhotoCheck(len(paths), missing=sorted(i for i, _ in paths if i not in present_ids))
    if decode and present:
        with ThreadPoolExecutor(max_workers=workers or min(8, 2 * (os.cpu_count() or 1))) as pool:
            ok = list(pool.map(decodes, [p for _, p in present], chunksize=64))
        result.corrupt = sorted(i for (i, _), good in zip(present, ok) if not good)
    return result
