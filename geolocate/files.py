"""Guards for files geolocate reads on a user's word: regular files only, nothing outside its root.

A FIFO or a device given as a config, a table or a photo would block the first `read()` forever,
so it is refused from `stat` (which never blocks) before anything opens it. What geolocate ships
(export, freeze) must also never follow a link: a `runs/<id>/REPORT.md -> ~/.ssh/id_rsa` would
otherwise put the link's target into an archive that leaves the machine.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from geolocate.errors import UserError


def not_regular_reason(path: Path | str) -> str | None:
    """Why `path` cannot be read as a regular file ('no such file', 'not a regular file'), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    return None if stat.S_ISREG(mode) else "not a regular file (a FIFO, device or socket)"


def require_regular_file(path: Path | str, what: str = "file") -> Path:
    """`path` when it is an existing regular file (links followed); UserError naming it otherwise."""
    reason = not_regular_reason(path)
    if reason is not None:
        raise UserError(f"{what} {path}: {reason}")
    return Path(path)


def refuse_special_file(path: Path | str, what: str = "file") -> None:
    """UserError when `path` exists but is a FIFO, device or socket (a read would block or never end).

    Missing files and directories are left to the caller, which has its own words for them.
    """
    reason = not_regular_reason(path)
    if reason is not None and reason.startswith("not a regular file"):
        raise UserError(f"{what} {path}: {reason}")


def confined_reason(path: Path | str, root: Path | str) -> str | None:
    """Why `path` may not be read as a file of `root`, or None when it may.

    Refused: a symbolic link (at the file itself), a path whose resolved form leaves `root`
    (a linked parent directory, `..`), and anything but a regular file.
    """
    path = Path(path)
    if path.is_symlink():
        return f"is a symbolic link (to {os.readlink(path)!r}); links are never followed"
    try:
        path.resolve(strict=True).relative_to(Path(root).resolve())
    except FileNotFoundError:
        return "no such file"
    except (ValueError, OSError, RuntimeError):
        return f"resolves outside {root}"
    return not_regular_reason(path)


def is_inside(path: Path | str, root: Path | str) -> bool:
    """True when `path`, resolved (links followed), lies inside `root`, resolved."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True
