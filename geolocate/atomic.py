"""Atomic writes: a temporary file in the target's directory, fsync, then `os.replace`.

A reader sees the old file or the new one, never half of one, even if the process is killed
mid-write. Disk-full and read-only errors become a one-line `UserError` and leave nothing behind.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
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
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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
