"""`run_import`: a user's own geotagged photos into the manifest, as the `local` source.

Each photo's position comes from its EXIF GPS, or from a CSV (`file,lat,lon[,heading,
captured_at,sequence_id]`, file names relative to the CSV) for photos without one. A photo with
no usable position is listed with its reason, never guessed. Photos are stored under their
content-hash id (`local:<sha-256 prefix>`), so importing twice adds nothing; JPEGs are copied
byte for byte, other formats (PNG, TIFF, HEIC with pillow-heif) are written as JPEG. Photos
given without a sequence are grouped into sequences (`grouping.group_sequences`) so that
`split` keeps each walk on one side.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from geolocate import atomic
from geolocate.acquire.download import rows_frame
from geolocate.acquire.exif import PhotoFacts, heading, position_problem, read_facts
from geolocate.acquire.grouping import group_sequences
from geolocate.acquire.panorama import is_equirectangular
from geolocate.config import LocalConfig
from geolocate.data.images import DECODE_ERRORS, decoded_size, open_photo
from geolocate.errors import UserError
from geolocate.lock import locks_data
from geolocate.manifest import merge_manifest, read_manifest
from geolocate.paths import DataPaths, qualified_id, safe_name

SOURCE = "local"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif"}
HEIF_SUFFIXES = {".heic", ".heif"}
HEIF_HINT = "HEIC/HEIF needs pillow-heif: pip install 'geolocate[heif]'"
_ID_HEX = 16  # 64 bits of sha-256: no collision below billions of photos


@dataclass
class ImportReport:
    """What an import did: new ids, photos already present, skipped files with their reason."""

    imported: list[str] = field(default_factory=list)
    already: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # file → reason
    panos: int = 0
    sequences: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """imported, already imported, then one entry per skip reason."""
        return {"imported": len(self.imported), "already imported": self.already, **Counter(f"skipped: {r}" for r in self.skipped.values())}

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts(), "imported": self.imported, "skipped": self.skipped, "panos": self.panos,
                "sequences": self.sequences, "seconds": round(self.seconds, 3)}


@locks_data("import")
def run_import(cfg: LocalConfig, data: DataPaths, paths: list[Path], *, name: str | None = None, license: str | None = None,
               workers: int = 4) -> ImportReport:
    """Import the photos under `paths` (folders, searched recursively; photo files; position CSVs).

    Args:
        cfg: the `[local]` table (area name, default licence, sequence grouping thresholds).
        data: the data directory.
        paths: what to import.
        name: the photos' area (`city` in the manifest; default `cfg.name`).
        license: licence of photos whose EXIF has no Copyright (default `cfg.license`).
        workers: threads reading photos (decoding releases the GIL).

    Raises:
        UserError: a path that does not exist, a CSV without file, lat and lon columns, an unusable
            `name`, or the data directory locked by another command.
    """
    if name is not None:
        safe_name(name, "area name")  # it names the area's rows, as a fetched area's name does
    started = time.perf_counter()
    report, known = ImportReport(), set(read_manifest(data, columns=["image_id"])["image_id"].to_list())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        photos = list(pool.map(lambda item: _read_and_store(data, known, *item), find_photos(paths)))
    rows: dict[str, dict[str, Any]] = {}
    for photo in photos:
        if isinstance(photo, tuple):
            report.skipped[str(photo[0])] = photo[1]
        elif photo["image_id"] in known or photo["image_id"] in rows:
            report.already += 1
        else:
            rows[photo["image_id"]] = photo
    if rows:
        _store(cfg, data, list(rows.values()), name or cfg.name, license or cfg.license, report)
    report.seconds = time.perf_counter() - started
    return report


def _read_and_store(data: DataPaths, known: set[str], path: Path, given: dict | None) -> dict[str, Any] | tuple[Path, str]:
    """`read_photo`, then the new photo's JPEG written to data/raw (in the worker: bodies are not kept)."""
    photo = read_photo(path, given)
    if isinstance(photo, dict):
        body = photo.pop("body")
        photo["bytes"] = len(body)
        if photo["image_id"] not in known:
            atomic.write_bytes(data.raw_photo(photo["image_id"]), body)
    return photo


def _store(cfg: LocalConfig, data: DataPaths, photos: list[dict], name: str, license: str | None, report: ImportReport) -> None:
    frame = _group(cfg, photos)
    now = datetime.now(timezone.utc)
    manifest_rows = []
    for photo, sequence in zip(photos, frame["sequence_id"].to_list()):
        manifest_rows.append(_manifest_row(photo, sequence, name, license, data, now))
        report.imported.append(photo["image_id"])
        report.panos += photo["is_pano"]
    report.sequences = frame["sequence_id"].n_unique()
    merge_manifest(data, rows_frame(manifest_rows))


def _group(cfg: LocalConfig, photos: list[dict]) -> pl.DataFrame:
    """Sequences: the given ones, else rebuilt from camera, time and distance."""
    keys = ("image_id", "camera", "captured_at", "lat", "lon", "order", "sequence_id")
    frame = pl.DataFrame([{k: p[k] for k in keys} for p in photos], schema_overrides={"captured_at": pl.Datetime("us", "UTC")},
                         infer_schema_length=None)
    grouped = group_sequences(frame, cfg.sequence_gap_s, cfg.sequence_distance_m, prefix="seq:")
    return frame.with_columns(sequence_id=pl.coalesce(pl.col("sequence_id").cast(pl.Utf8), grouped))


def _manifest_row(photo: dict, sequence: str, name: str, license: str | None, data: DataPaths, now: datetime) -> dict[str, Any]:
    return {
        "image_id": photo["image_id"], "sequence_id": sequence, "creator_username": photo["artist"],
        "captured_at": photo["captured_at"], "lat": photo["lat"], "lon": photo["lon"], "compass_angle": photo["heading"],
        "is_pano": photo["is_pano"], "camera_type": "equirectangular" if photo["is_pano"] else "perspective",
        "city": name, "source": SOURCE, "path": data.relative(data.raw_photo(photo["image_id"])), "width": photo["width"],
        "height": photo["height"], "bytes": photo["bytes"], "fetched_at": now, "license": photo["copyright"] or license,
    }


# ---------------------------------------------------------------- finding and reading photos


def find_photos(paths: list[Path]) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """(photo file, CSV values or None) for every photo named by `paths`, folders searched recursively."""
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith("."))
            yield from ((p, None) for p in files)
        elif path.is_file() and path.suffix.lower() == ".csv":
            yield from read_positions(path)
        elif path.is_file():
            yield path, None
        else:
            raise UserError(f"{path}: no such file or folder")


def read_positions(table: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Rows of a position CSV: `file,lat,lon[,heading,captured_at,sequence_id]`, files relative to the CSV."""
    try:
        with table.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {table}: {exc}") from None
    missing = {"file", "lat", "lon"} - set(rows[0] if rows else {})
    if missing:
        raise UserError(f"{table}: missing column(s) {', '.join(sorted(missing))}; expected file,lat,lon[,heading,captured_at,sequence_id]")
    for row in rows:
        yield table.parent / row["file"].strip(), row


def read_photo(path: Path, given: dict[str, Any] | None = None) -> dict[str, Any] | tuple[Path, str]:
    """The photo's facts and JPEG body, or (path, reason it is skipped)."""
    if path.suffix.lower() in HEIF_SUFFIXES and not _heif_available():
        return path, HEIF_HINT
    try:
        body = path.read_bytes()
    except OSError as exc:
        return path, f"unreadable ({exc.strerror or type(exc).__name__})"
    try:
        with open_photo(body) as image:
            facts, fmt = read_facts(image.getexif()), image.format
    except DECODE_ERRORS:
        return path, "not an image"
    problem = _apply(facts, given)
    if problem:
        return path, problem
    jpeg = body if fmt == "JPEG" else _as_jpeg(body)
    size = decoded_size(jpeg, verify=True) if jpeg is not None else None
    if size is None:
        return path, "does not decode"
    return {"image_id": qualified_id(SOURCE, hashlib.sha256(body).hexdigest()[:_ID_HEX]), "body": jpeg, "order": str(path),
            "lat": facts.lat, "lon": facts.lon, "heading": facts.heading, "captured_at": facts.captured_at,
            "camera": facts.camera, "artist": facts.artist, "copyright": facts.copyright, "width": size[0], "height": size[1],
            "is_pano": is_equirectangular(*size),
            "sequence_id": (given or {}).get("sequence_id") or None}


def _apply(facts: PhotoFacts, given: dict[str, Any] | None) -> str | None:
    """Overlay CSV values on the EXIF facts; the reason the photo has no position, or None."""
    if given is None:
        return facts.problem
    try:
        facts.lat, facts.lon = float(given["lat"]), float(given["lon"])
    except (TypeError, ValueError):
        return "CSV position unreadable"
    facts.heading = heading(given.get("heading")) if (given.get("heading") or "").strip() else facts.heading
    when = (given.get("captured_at") or "").strip()
    if when:
        try:
            parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return f"CSV captured_at {when!r} is not ISO 8601"
        facts.captured_at = parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return position_problem(facts.lat, facts.lon)


def _as_jpeg(body: bytes) -> bytes | None:
    """A non-JPEG photo as JPEG (orientation applied: the copy carries no EXIF)."""
    from PIL import ImageOps

    out = io.BytesIO()
    try:
        with open_photo(body) as image:
            ImageOps.exif_transpose(image).convert("RGB").save(out, format="JPEG", quality=95)
    except DECODE_ERRORS:
        return None
    return out.getvalue()


def _heif_available() -> bool:
    """True when pillow-heif is installed (its opener is registered once)."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True
