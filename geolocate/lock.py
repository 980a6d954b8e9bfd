"""A lock file per directory, so two commands never write the same data at once.

`DataLock(data/.lock)` creates the file with `O_CREAT | O_EXCL` (atomic: exactly one process
wins) and writes who holds it: pid, host, command, start time. A second command gets a one-line
error naming the holder. A lock whose pid no longer runs on this host is stale (its process was
killed); it is taken over under a short-lived takeover guard, itself created with O_EXCL, that
re-reads the lock before removing it, so two processes breaking the same stale lock cannot both
end up holding it. Within one process the lock is re-entrant: `geolocate batch` runs steps that
each lock the data directory.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from geolocate.atomic import sweep_temps
from geolocate.errors import UserError

_HELD: dict[str, int] = {}  # resolved lock path → re-entry depth, for this process
_EMPTY_GRACE_S = 5.0  # a lock file still empty after this long was left by a crash mid-create
_GUARD_STALE_S = 30.0
_POLL_S = 0.1


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says about its holder."""

    pid: int
    hostname: str
    command: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}, started {self.started} on {self.hostname})"


class DataLock:
    """Context manager holding `path` (e.g. `data/.lock`) for the duration of a command.

    Args:
        path: the lock file.
        command: what to show a second command (default: this process's command line).
        wait_s: how long to wait for a live holder before giving up (0: fail at once).
    """

    def __init__(self, path: Path | str, command: str | None = None, wait_s: float = 0.0) -> None:
        self.path = Path(path)
        self.command = command or _current_command()
        self.wait_s = wait_s
        self._key = str(self.path.resolve())
        self._info: LockInfo | None = None

    def __enter__(self) -> "DataLock":
        if _HELD.get(self._key):
            _HELD[self._key] += 1
            return self
        deadline = time.monotonic() + self.wait_s
        while not self._try_create():
            holder = read_lock(self.path)
            if holder is None:  # being written (read again), or left empty by a crash (removed)
                if not remove_if_abandoned(self.path):
                    time.sleep(_POLL_S)
                continue
            if _is_stale(holder):
                _break_stale(self.path, holder)
                continue
            if time.monotonic() >= deadline:
                raise UserError(self._busy_message(holder))
            time.sleep(_POLL_S)
        _HELD[self._key] = 1
        return self

    def __exit__(self, *exc_info) -> None:
        _HELD[self._key] -= 1
        if _HELD[self._key] == 0:
            del _HELD[self._key]
            if read_lock(self.path) == self._info:  # removed by hand and retaken meanwhile? not ours
                self.path.unlink(missing_ok=True)

    def _try_create(self) -> bool:
        info = self._info = LockInfo(os.getpid(), socket.gethostname(), self.command, _now())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise UserError(f"cannot create the lock {self.path}: {exc.strerror}; is the directory writable?") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(info)))
        return True

    def _busy_message(self, holder: LockInfo) -> str:
        return f"{self.path.parent}/ is locked by {holder.describe()}; wait for it or remove {self.path} if that process is gone"


def locks_data(command: str) -> Callable:
    """Decorator for a `run_<stage>` that writes the data directory: hold its lock while it runs.

    The lock is found from the function's `data` argument (a `DataPaths`); it is re-entrant, so a
    stage called by `geolocate batch` or `demo`, which hold the lock already, goes straight in.
    """

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            data = signature.bind_partial(*args, **kwargs).arguments["data"]
            with DataLock(data.lock, command=f"geolocate {command}"):
                sweep_temps(data.root, recursive=True)  # what a killed stage left: nobody else writes here now
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def read_lock(path: Path) -> LockInfo | None:
    """The holder recorded in `path`, or None when the file is gone, empty or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return LockInfo(int(data["pid"]), str(data["hostname"]), str(data["command"]), str(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_stale(holder: LockInfo) -> bool:
    """True when the holder ran on this host and its pid is gone (a killed command)."""
    if holder.hostname != socket.gethostname():
        return False  # another machine's pid means nothing here: let the user decide
    return not _pid_alive(holder.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def _break_stale(path: Path, seen: LockInfo) -> None:
    """Remove `path` if it still holds the stale `seen`, under an O_EXCL takeover guard."""
    guard = path.with_name(path.name + ".takeover")
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        if time.time() - _mtime(guard) > _GUARD_STALE_S:
            guard.unlink(missing_ok=True)  # a taker killed mid-takeover
        time.sleep(_POLL_S)
        return
    try:
        if read_lock(path) == seen:  # not replaced by a live holder since we looked
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)
        guard.unlink(missing_ok=True)


def remove_if_abandoned(path: Path) -> bool:
    """Delete a lock file left empty by a crash between create and write; True if removed."""
    if read_lock(path) is None and path.is_file() and time.time() - _mtime(path) > _EMPTY_GRACE_S:
        path.unlink(missing_ok=True)
        return True
    return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _current_command() -> str:
    """'geolocate fetch' style: the program name and its sub-command, no options (no secrets)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    program = "geolocate" if program == "__main__.py" else program
    words = [arg for arg in sys.argv[1:3] if not arg.startswith("-")]
    return " ".join([program, *words[:1]])
