"""`run_clean_raw`: free the disk the raw downloads take, once their processed copies exist.

Only regular files directly under `data/raw/` are touched: `<id>.jpg` downloads (or synthetic
photos) and the hidden `.tmp` files a killed write left behind. The processed copies that
training reads, the manifest, cells, splits, models, runs and exports are never deleted.

A raw photo whose processed copy is missing is kept (deleting it would lose the photo until it is
fetched again) unless `force` is given. The manifest keeps every row: the `path` of a deleted
raw photo becomes null, which says "not on disk"; the image id stays, so `geolocate fetch`
can download it again by id (`raw/<id>.jpg` is derived from the id, never from `path`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from geolocate.manifest import read_manifest, write_manifest
from geolocate.lock import DataLock
from geolocate.errors import UserError
from geolocate.paths import DataPaths, id_from_stem, is_valid_image_id

_SHOW = 5


@dataclass
class CleanRawReport:
    """What `run_clean_raw` deleted (or, in a dry run, would delete) and what it kept."""

    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    blocked: list[str] = field(default_factory=list)  # raw photos without a processed copy, kept
    forced: list[str] = field(default_factory=list)  # the same, deleted because of `force`
    manifest_rows: int = 0  # rows whose `path` was cleared
    dry_run: bool = False

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "files": len(self.files), "bytes": self.bytes,
                "paths": [str(p) for p in self.files], "blocked": self.blocked, "forced": self.forced,
                "manifest_rows": self.manifest_rows}


def run_clean_raw(data: DataPaths, dry_run: bool = False, force: bool = False) -> CleanRawReport:
    """Delete the raw downloads whose processed copy exists, and clear their manifest `path`.

    Args:
        data: the data directory.
        dry_run: only list what would be deleted (nothing changes).
        force: also delete raw photos without a processed copy.

    Raises:
        UserError: some raw photos have no processed copy and `force` is off (nothing deleted),
            or the data directory is locked by another command.
    """
    with DataLock(data.lock, command="geolocate clean-raw"):
        report = CleanRawReport(dry_run=dry_run)
        manifest = read_manifest(data)
        processed = _processed_ids(manifest, data)
        for path in raw_files(data):
            image_id = id_from_stem(path.stem) if path.suffix == ".jpg" else None
            if image_id is not None and image_id not in processed:
                (report.forced if force else report.blocked).append(image_id)
                if not force:
                    continue
            report.files.append(path)
            report.bytes += path.stat().st_size
        if report.blocked and not dry_run:
            raise UserError(_blocked_message(report.blocked))
        if not dry_run:
            try:
                for path in report.files:
                    _delete(path)
            finally:  # also after a failed deletion: rows of the files already gone are cleared
                report.manifest_rows = clear_missing_paths(data, manifest)
        return report


def _delete(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(f"cannot delete {path}: {(exc.strerror or str(exc)).lower()}; check the permissions of {path.parent}") from None


def clear_missing_paths(data: DataPaths, manifest: pl.DataFrame) -> int:
    """Set `path` to null on rows whose raw file is gone; returns how many rows changed.

    Run after the deletions (not before), so a clean-raw killed in between is repaired by the
    next one: it finds the files gone and the rows still pointing at them.
    """
    if manifest.is_empty():
        return 0
    gone = [bool(p) and not (data.root / p).is_file() for p in manifest["path"].to_list()]
    mask = pl.Series(gone, dtype=pl.Boolean)
    changed = int(mask.sum())
    if changed:
        cleared = pl.when(mask).then(pl.lit(None, dtype=pl.Utf8)).otherwise(pl.col("path"))
        write_manifest(data, manifest.with_columns(cleared.alias("path")))
    return changed


def raw_files(data: DataPaths) -> list[Path]:
    """Regular files directly under raw/: photos named by a valid id, and leftover temp files.

    Symlinks, sub-directories and foreign files are left alone: clean-raw deletes only what
    geolocate itself wrote there.
    """
    if not data.raw.is_dir():
        return []
    out = []
    for entry in sorted(os.scandir(data.raw), key=lambda e: e.name):
        if not entry.is_file(follow_symlinks=False):
            continue
        name = entry.name
        is_photo = name.endswith(".jpg") and id_from_stem(name[:-4]) is not None
        is_leftover = name.startswith(".") and name.endswith(".tmp")
        if is_photo or is_leftover:
            out.append(Path(entry.path))
    return out


def _processed_ids(manifest: pl.DataFrame, data: DataPaths) -> set[str]:
    """Ids whose processed copy is recorded in the manifest and present on disk."""
    rows = manifest.filter(pl.col("processed_path").is_not_null() & (pl.col("processed_path") != ""))
    return {i for i in rows["image_id"].to_list() if is_valid_image_id(i) and data.processed_photo(i).is_file()}


def _blocked_message(ids: list[str]) -> str:
    examples = ", ".join(ids[:_SHOW]) + (", …" if len(ids) > _SHOW else "")
    return (f"{len(ids)} raw photos have no processed copy ({examples}); run `geolocate prepare` first, "
            "or pass --force to delete them anyway (fetch can download them again by id); nothing was deleted")
