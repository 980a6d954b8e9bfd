"""Atomic writes: a temporary file in the target's directory, fsync, then `os.replace`.

A reader sees the old file or the new one, never half of one, even if the process is killed
mid-write. Disk-full and read-only errors become a one-line `UserError` and leave nothing behind.

A `kill -9` mid-write leaves the hidden temporary behind. Its name carries the writer's pid
(`.<name>.<pid>.<random>.tmp`, see `temp_name`), so the next run of the stage removes it with
`sweep_temps` once that process is gone, and never touches a live writer's file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from geolocate.errors import UserError


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it replaces `target` atomically."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
        # mkstemp makes 0600 files; give the result the permissions a plain open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
    except OSError as exc:
        raise _as_user_error(exc, target) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise _as_user_error(exc, target) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


_TEMP = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
_OLD_FORMAT_AGE_S = 3600  # temporaries named before they carried a pid: removed once surely abandoned


def temp_name(target: Path | str) -> Path:
    """A hidden sibling name for building `target` (a file or a directory) that `sweep_temps` recognises."""
    target = Path(target)
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def sweep_temps(root: Path | str, recursive: bool = False) -> int:
    """Remove the temporaries (`.<name>.<pid>.<random>.tmp` files and folders) that killed runs
    left under `root`; a live process's are kept. Returns how many were removed."""
    root = Path(root)
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.rglob(".*.tmp") if recursive else root.glob(".*.tmp"):
        if not _abandoned(path):
            continue
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()  # a link itself, never its target
            removed += 1
        except OSError:
            pass  # another sweeper got there first, or not ours to remove: harmless
    return removed


def _abandoned(path: Path) -> bool:
    match = _TEMP.match(path.name)
    if match is None:
        try:
            return time.time() - path.lstat().st_mtime > _OLD_FORMAT_AGE_S
        except OSError:
            return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive (another user's), or not a pid at all: leave it
    return False


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path | str, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(target: Path | str, df) -> None:
    """Write a polars DataFrame atomically."""
    with atomic_path(target) as tmp:
        df.write_parquet(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _as_user_error(exc: OSError, target: Path) -> UserError:
    if exc.errno == errno.ENOSPC:
        return UserError(f"no space left on the device while writing {target}; free some space and run again (nothing was half-written)")
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return UserError(f"cannot write {target}: {exc.strerror.lower()}; choose a writable directory (--set paths.data=...)")
    return UserError(f"cannot write {target}: {exc.strerror or exc}")
