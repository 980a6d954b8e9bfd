"""`geolocate export`: the project state as one tar.gz with a SHA-256 manifest.

The archive holds the data tables (manifest, cells, labels, split and its leakage report, KPI
history), the resolved config, the global best model with its sidecar, and the latest run's
report, plots and metrics; processed photos only with `--with-images`. Missing optional parts
are listed as skipped. `manifest.json` (and a `sha256sum -c`-compatible `SHA256SUMS`) close the
archive. Every byte is scanned for the Mapillary token on the way in: an export that would carry
it is refused and nothing is written. Verification lives in `verify.py`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from geolocate.artifacts.checkpoint import copy_checkpoint
from geolocate.artifacts.digest import format_sha256sums, sha256_file
from geolocate.lock import DataLock
from geolocate.artifacts.resolve import file_of
from geolocate.artifacts.rundir import resolve_run
from geolocate.artifacts.secret_scan import StreamScanner, describe, secret_patterns
from geolocate.artifacts.versions import library_versions
from geolocate.atomic import atomic_path, sweep_temps
from geolocate.config import GeolocateConfig, public_dict
from geolocate.errors import UserError
from geolocate.files import confined_reason
from geolocate.paths import ProjectPaths

FORMAT = "geolocate.export"
VERSION = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_TEXT_SUFFIXES = {".json", ".csv", ".md", ".txt", ".toml"}
_CHUNK = 1 << 20


@dataclass
class ExportResult:
    """What `run_export` wrote: the archive, its members ({name, sha256, size}) and what was skipped."""

    path: Path
    members: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    sha256: str = ""  # of the whole archive: the trust anchor `export --verify --sha256` checks

    @property
    def total_bytes(self) -> int:
        return sum(m["size"] for m in self.members)


def run_export(
    cfg: GeolocateConfig, project_paths: ProjectPaths, with_images: bool = False, now: datetime | None = None,
    run_ref: str = "latest",
) -> ExportResult:
    """Write `exports/snapshot-<UTC time>.tar.gz` atomically and return what is in it.

    `run_ref` names the run whose report, plots, metrics and best checkpoint go in (freeze passes
    the run it releases, so the snapshot never describes another run).

    Raises:
        UserError: the data directory is locked by another command, or a member holds the token.
    """
    now = now or datetime.now(timezone.utc)
    sweep_temps(project_paths.exports)  # what a killed export left behind
    target = _free_name(project_paths.exports, f"snapshot-{now:%Y%m%d-%H%M%S}")
    data_root = project_paths.data_root
    lock = DataLock(project_paths.data.lock, command="geolocate export") if data_root.is_dir() else contextlib.nullcontext()
    with lock, tempfile.TemporaryDirectory(prefix="geolocate-export-") as staging:
        sources, skipped = _collect(cfg, project_paths, Path(staging), with_images, run_ref)
        result = ExportResult(target, skipped=skipped)
        with atomic_path(target) as tmp, tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for name, source in sources:
                result.members.append(_add(tar, name, source))
            _add_bytes(tar, MANIFEST, _manifest_bytes(result, now, with_images))
            _add_bytes(tar, SUMS, format_sha256sums({m["name"]: m["sha256"] for m in result.members}).encode())
    result.sha256 = sha256_file(target)
    return result


def _free_name(folder: Path, base: str) -> Path:
    """`folder/base.tar.gz`, or `base-2.tar.gz`... when an export of the same second exists."""
    candidate, number = folder / f"{base}.tar.gz", 2
    while candidate.exists():
        candidate, number = folder / f"{base}-{number}.tar.gz", number + 1
    return candidate


# ---------------------------------------------------------------- what goes in


def _collect(
    cfg: GeolocateConfig, paths: ProjectPaths, staging: Path, with_images: bool, run_ref: str = "latest"
) -> tuple[list[tuple[str, Path | bytes]], list[dict[str, str]]]:
    """(archive name, file or bytes) for every member, plus the skipped ones with a reason.

    A wanted part's source is a file, bytes made here, or a string saying why it is missing.
    """
    data = paths.data
    wanted: list[tuple[str, Path | bytes | str]] = [
        (f"data/{p.name}", confined(p, data.root, f"data/{p.name}"))
        for p in (data.manifest, data.cells, data.labels, data.split, data.split_report, data.kpi_history)
    ]
    wanted.append(("config.json", (json.dumps(public_dict(cfg), indent=2) + "\n").encode()))
    wanted += _best_model(paths, staging)
    wanted += _run_files(paths, run_ref, staging)
    if with_images:
        wanted += _photos(data.processed)
    members, skipped = [], []
    for name, source in wanted:
        if isinstance(source, bytes) or (isinstance(source, Path) and source.is_file()):
            members.append((name, source))
        else:
            skipped.append({"name": name, "reason": source if isinstance(source, str) else "not found"})
    return members, skipped


def _best_model(paths: ProjectPaths, staging: Path) -> list[tuple[str, Path | str]]:
    """The global best, copied consistently first (a promotion may replace it meanwhile)."""
    names = ["models/best.safetensors", "models/best.json"]
    if not paths.best_sidecar.is_file():
        return [(name, "no global best yet") for name in names]
    for name in names:
        confined(paths.models / Path(name).name, paths.models, name)
    stem = staging / "best"
    copy_checkpoint(paths.models / "best", stem)
    return [(names[0], file_of(stem, ".safetensors")), (names[1], file_of(stem, ".json"))]


def _run_files(paths: ProjectPaths, run_ref: str, staging: Path) -> list[tuple[str, Path | str]]:
    try:
        run = resolve_run(run_ref, paths)
    except UserError:
        return [(f"runs/{run_ref}", "no such run")]
    files = [(f"runs/{run.run_id}/{p.name}", confined(p, run.root, f"runs/{run.run_id}/{p.name}"))
             for p in (run.report, *run.plots, run.metrics_csv, run.metrics_json, run.config)]
    if file_of(run.best, ".json").is_file():
        for suffix in (".safetensors", ".json"):
            confined(file_of(run.best, suffix), run.root, f"runs/{run.run_id}/best{suffix}")
        stem = staging / f"run-{run.run_id}-best"
        copy_checkpoint(run.best, stem)  # a consistent pair even if evaluate rewrites the sidecar meanwhile
        files += [(f"runs/{run.run_id}/best{suffix}", file_of(stem, suffix)) for suffix in (".safetensors", ".json")]
    return files


def confined(path: Path, root: Path, name: str) -> Path | str:
    """`path` when it is a regular file of `root`, "not found" when absent.

    Raises:
        UserError: `path` is a link, resolves outside `root` or is a special file; what is
            shipped leaves the machine, so a link's target is never read.
    """
    if not path.exists() and not path.is_symlink():
        return "not found"
    reason = confined_reason(path, root)
    if reason is not None:
        raise UserError(f"refusing to ship {name}: {path} {reason}; replace it with a regular file")
    return path


def _photos(folder: Path) -> list[tuple[str, Path | str]]:
    """Processed photos: regular `.jpg` files of the data directory only (a symlink, or a linked
    `processed/`, could point anywhere on the machine; a hidden `.tmp` is a write a killed process
    left behind)."""
    if not folder.is_dir():
        return [("data/processed/", "no processed photos (geolocate prepare)")]
    return [
        (f"data/processed/{p.name}", p)
        for p in sorted(folder.glob("*.jpg"))
        if confined_reason(p, folder.parent) is None and not p.name.startswith(".")
    ]


def _manifest_bytes(result: ExportResult, now: datetime, with_images: bool) -> bytes:
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "created": now.isoformat(timespec="seconds"),
        "versions": library_versions(),
        "with_images": with_images,
        "members": result.members,
        "skipped": result.skipped,
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


# ---------------------------------------------------------------- writing members


class _Tee:
    """A reader that hashes, counts and scans for secrets what tarfile copies into the archive."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self.handle, self.name = handle, name
        self.sha256 = hashlib.sha256()
        self.size = 0
        binary = Path(name).suffix not in _TEXT_SUFFIXES
        self.scanner = StreamScanner(secret_patterns(binary=binary))

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.sha256.update(chunk)
        self.size += len(chunk)
        self.scanner.update(chunk)
        return chunk


def _add(tar: tarfile.TarFile, name: str, source: Path | bytes) -> dict[str, Any]:
    if isinstance(source, bytes):
        return _add_bytes(tar, name, source)
    if source.suffix == ".parquet":
        _check_parquet(source, name)
    with _open_no_link(source, name) as handle:
        status = os.fstat(handle.fileno())
        tee = _Tee(handle, name)
        tar.addfile(_tarinfo(name, status.st_size, status.st_mtime), tee)
    return _member(tee)


def _open_no_link(source: Path, name: str) -> BinaryIO:
    """Open without following a link (one swapped in after the check is refused, not read)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise UserError(f"refusing to ship {name}: cannot open {source} without following a link ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"refusing to ship {name}: {source} is not a regular file")
    return os.fdopen(fd, "rb")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    tee = _Tee(io.BytesIO(data), name)
    tar.addfile(_tarinfo(name, len(data), time.time()), tee)
    return _member(tee)


def _member(tee: _Tee) -> dict[str, Any]:
    if tee.scanner.found is not None:
        raise UserError(f"refusing to export: {tee.name} contains {describe(tee.scanner.found)}; remove it and export again")
    return {"name": tee.name, "sha256": tee.sha256.hexdigest(), "size": tee.size}


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _check_parquet(path: Path, name: str) -> None:
    """Parquet pages are compressed, so the byte scan cannot see a token in them: read the strings."""
    import polars as pl

    patterns = [p.decode() for p in secret_patterns()]
    frame = pl.read_parquet(path)
    for column in (c for c, dtype in frame.schema.items() if dtype == pl.Utf8):
        for pattern in patterns:
            if frame[column].str.contains(pattern, literal=True).any():
                raise UserError(
                    f"refusing to export: {name} column {column!r} contains {describe(pattern.encode())}; remove it and export again"
                )

