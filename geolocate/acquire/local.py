"""`run_import`: a user's own geotagged photos into the manifest, as the `local` source.

Each photo's position comes from its EXIF GPS, or from a CSV (`file,lat,lon[,heading,
captured_at,sequence_id]`, file names relative to the CSV) for photos without one. A photo with
no usable position is listed with its reason, never guessed.

What is read: the files named, the regular files inside a named folder, and the files a CSV
names inside the CSV's own folder (`files.py`, the one confinement rule). A link is never
followed, a FIFO or device never opened, a row naming a file elsewhere (absolute, `..`) is
refused with its line, unless `allow_outside` (`--allow-outside`) accepts a user's own paths
outside the table's folder (links and special files stay refused). One unreadable photo or row
is listed with its reason; the others are still imported. Photos are stored under their
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
from geolocate.acquire.exif import PhotoFacts, as_utc, heading, position_problem, read_facts
from geolocate.acquire.grouping import group_sequences
from geolocate.acquire.panorama import is_equirectangular
from geolocate.config import LocalConfig
from geolocate.data.images import DECODE_ERRORS, decoded_size, open_photo
from geolocate.errors import UserError
from geolocate.files import confined_reason, files_under, named_in, not_regular_reason
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
    skipped: dict[str, str] = field(default_factory=dict)  # file (or "table.csv line N") → reason
    repeated: int = 0  # table rows naming a file already named
    panos: int = 0
    sequences: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """imported, already imported, then one entry per skip reason."""
        repeated = {"skipped: named again": self.repeated} if self.repeated else {}
        return {"imported": len(self.imported), "already imported": self.already, **repeated,
                **Counter(f"skipped: {r}" for r in self.skipped.values())}

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts(), "imported": self.imported, "skipped": self.skipped, "panos": self.panos,
                "sequences": self.sequences, "seconds": round(self.seconds, 3)}


@locks_data("import")
def run_import(cfg: LocalConfig, data: DataPaths, paths: list[Path], *, name: str | None = None, license: str | None = None,
               workers: int = 4, allow_outside: bool = False) -> ImportReport:
    """Import the photos under `paths` (folders, searched recursively; photo files; position CSVs).

    Args:
        cfg: the `[local]` table (area name, default licence, sequence grouping thresholds).
        data: the data directory.
        paths: what to import.
        name: the photos' area (`city` in the manifest; default `cfg.name`).
        license: licence of photos whose EXIF has no Copyright (default `cfg.license`).
        workers: threads reading photos (decoding releases the GIL).
        allow_outside: accept table rows naming files outside the table's folder (still no links).

    Raises:
        UserError: a path that does not exist, a CSV without file, lat and lon columns, an unusable
            `name`, or the data directory locked by another command.
    """
    if name is not None:
        safe_name(name, "area name")  # it names the area's rows, as a fetched area's name does
    started = time.perf_counter()
    report, known = ImportReport(), set(read_manifest(data, columns=["image_id"])["image_id"].to_list())
    found = find_photos(paths, allow_outside)
    report.skipped.update(found.refused)
    report.repeated = found.repeated
    with ThreadPoolExecutor(max_workers=workers) as pool:
        photos = list(pool.map(lambda item: _read_and_store(data, known, *item), found.photos))
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
    try:
        photo = read_photo(path, given)
    except Exception as exc:  # noqa: BLE001 - one photo's crafted content must not stop the others
        return path, f"unreadable ({type(exc).__name__})"
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


@dataclass
class Found:
    """What the named paths hold: (photo, CSV values or None) to read, refused files, repeated rows."""

    photos: list[tuple[Path, dict[str, Any] | None]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    repeated: int = 0


def find_photos(paths: list[Path], allow_outside: bool = False) -> Found:
    """Every photo named by `paths` (folders searched recursively, links inside them never followed)."""
    found = Found()
    for path in paths:  # a path named on the command line is the user's word, even a link; what it holds is not
        if path.is_dir():
            files, refused = files_under(path, PHOTO_SUFFIXES)
            found.photos += [(p, None) for p in files]
            found.refused.update(refused)
        elif path.suffix.lower() == ".csv" and not_regular_reason(path) is None:
            read_positions(path, found, allow_outside)
        elif (reason := not_regular_reason(path)) is None:
            found.photos.append((path, None))
        elif reason == "no such file":
            raise UserError(f"{path}: no such file or folder")
        else:
            found.refused[str(path)] = reason
    return found


def read_positions(table: Path, found: Found, allow_outside: bool = False) -> None:
    """Rows of a position CSV (`file,lat,lon[,heading,captured_at,sequence_id]`, files relative to
    the CSV's folder) into `found`: a refused row is listed with its line, a file named twice is
    read once."""
    try:
        with table.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"file", "lat", "lon"} - set(reader.fieldnames or [])
            if missing:
                raise UserError(f"{table}: missing column(s) {', '.join(sorted(missing))}; "
                                f"expected file,lat,lon[,heading,captured_at,sequence_id]")
            seen: set[str] = set()
            for row in reader:  # streamed: a million rows are never all in memory
                _add_row(table, reader.line_num, row, seen, found, allow_outside)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {table}: {getattr(exc, 'strerror', None) or exc}") from None


def _add_row(table: Path, line: int, row: dict, seen: set[str], found: Found, allow_outside: bool) -> None:
    name = row["file"].strip() if isinstance(row.get("file"), str) else ""
    if name and name in seen:
        found.repeated += 1
        return
    seen.add(name)
    path = _table_file(table.parent, name, allow_outside)
    if isinstance(path, str):
        found.refused[f"{table} line {line} ({name[:200]!r})"] = path
    else:
        found.photos.append((path, row))


def _table_file(base: Path, name: str, allow_outside: bool) -> Path | str:
    """The photo a table row names, or why it is refused (`files.named_in`; `--allow-outside`
    also accepts absolute and `..` paths, still refusing links and special files)."""
    named = named_in(base, name, "the table's folder")
    if isinstance(named, str) and allow_outside and name and "\0" not in name:
        path = base / name
        return path if (reason := confined_reason(path, path.parent)) is None else reason
    if isinstance(named, Path) and (reason := not_regular_reason(named)) is not None:
        return reason
    return named


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
            "sequence_id": _cell(given or {}, "sequence_id") or None}


def _apply(facts: PhotoFacts, given: dict[str, Any] | None) -> str | None:
    """Overlay CSV values on the EXIF facts; the reason the photo has no position, or None."""
    if given is None:
        return facts.problem
    try:
        facts.lat, facts.lon = float(given["lat"]), float(given["lon"])
    except (TypeError, ValueError):
        return "CSV position unreadable"
    facts.heading = heading(given.get("heading")) if _cell(given, "heading") else facts.heading
    when = _cell(given, "captured_at")
    if when:
        try:
            parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return f"CSV captured_at {when!r} is not ISO 8601"
        facts.captured_at = as_utc(parsed)
        if facts.captured_at is None:
            return f"CSV captured_at {when!r} is not a date in UTC range"
    return position_problem(facts.lat, facts.lon)


def _cell(row: dict[str, Any], column: str) -> str:
    """A CSV cell as stripped text ('' when the row is short: DictReader gives None, or a list for extras)."""
    value = row.get(column)
    return value.strip() if isinstance(value, str) else ""


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
