"""Guards for files geolocate reads on a user's word: regular files only, nothing outside its root.

The one home of path confinement, used by `export`, `freeze`, `import`, `import-locations`,
`predict --locations` and a release's files:
- a FIFO or a device given as a config, a table or a photo would block the first `read()`
  forever (or, `/dev/zero`, never end), so it is refused from `stat` (which never blocks) before
  anything opens it;
- a file found in a folder or named by a table must lie inside that folder (or the table's), and
  is never a symbolic link: `photos/x.jpg -> ~/.ssh/id_rsa` or a row `../../etc/passwd` would
  otherwise read, copy or ship another file of the machine;
- a refusal never says whether a file outside exists (the reason is decided from the name and
  the links inside the root, not from the target).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from geolocate.errors import UserError

_SYSTEM_TREES = ("/proc/", "/sys/", "/dev/")


def not_regular_reason(path: Path | str) -> str | None:
    """Why `path` cannot be read as a regular file ('no such file', 'not a regular file'), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except ValueError:  # an embedded NUL byte: no file can have that name
        return "not a file name (holds a NUL byte)"
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, device or socket)"
    # /proc and /sys files pass for regular ones (`/proc/self/environ`) but are the system's state
    return "a system file, not data" if os.path.realpath(path).startswith(_SYSTEM_TREES) else None


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


def outside_reason(path: Path | str, root: Path | str) -> str | None:
    """Why `path` is not a file of `root`, or None: it resolves outside `root` (`..`, a linked
    parent directory), or it is itself a symbolic link. Nothing outside `root` is looked at."""
    path, root = Path(path), Path(root)
    if not _resolves_inside(path.parent, root):  # decided before the file itself is looked at
        return f"lies outside {root}"
    if path.is_symlink():
        return "is a symbolic link; links are never followed"
    return None if _resolves_inside(path, root) else f"lies outside {root}"


def _resolves_inside(path: Path, root: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except (ValueError, OSError):
        return False
    return True


def confined_reason(path: Path | str, root: Path | str) -> str | None:
    """Why `path` may not be read as a file of `root`, or None when it may.

    Refused: a path whose resolved form leaves `root` (a linked parent directory, `..`), a
    symbolic link (at the file itself), and anything but a regular file.
    """
    if "\0" in str(path):
        return "not a file name (holds a NUL byte)"
    return outside_reason(path, root) or not_regular_reason(path)


def named_in(base: Path | str, name: str, what: str = "its folder") -> Path | str:
    """The file a table names by `name`, relative to `base`, or why it is refused.

    Refused from the name alone (nothing is looked up): empty, a NUL byte, absolute, `..`.
    Then the links inside `base` are followed only while they stay inside it. Whether the file
    exists is left to the reader (a missing file is the table's problem, not a hole).
    """
    if not name:
        return "no file named"
    if "\0" in name:
        return "file name holds a NUL byte"
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        return f"outside {what} (absolute or '..'); name files relative to it"
    reason = outside_reason(Path(base) / relative, base)
    return Path(base) / relative if reason is None else reason.replace(f"lies outside {base}", f"resolves outside {what}")


def files_under(folder: Path | str, suffixes: set[str] | None = None) -> tuple[list[Path], dict[str, str]]:
    """Regular files under `folder` (sorted; hidden ones skipped), and {file: reason} for the refused.

    Links are never followed: a linked directory is not walked into, a linked file is refused.
    """
    folder = Path(folder)
    found, refused = [], {}
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            path = Path(top) / name
            if name.startswith(".") or (suffixes is not None and path.suffix.lower() not in suffixes):
                continue
            reason = confined_reason(path, folder)
            if reason is None:
                found.append(path)
            else:
                refused[str(path)] = reason
        for name in dirs:
            if (Path(top) / name).is_symlink():
                refused[str(Path(top) / name)] = "is a symbolic link; links are never followed"
    return sorted(found), refused


def refuse_outputs_over_inputs(outputs: dict[str, Path | None], inputs: list[Path], photo_suffixes: set[str]) -> None:
    """UserError when an output (`{"--out": path}`) is one of the input photos or has a photo's suffix.

    `predict photo.jpg --geojson photo.jpg` would otherwise replace the photo with GeoJSON.
    """
    taken = {os.path.realpath(p) for p in inputs}
    for option, path in outputs.items():
        if path is None:
            continue
        if path.suffix.lower() in photo_suffixes | {".heic", ".heif"}:
            raise UserError(f"{option} {path}: that is a photo's name; outputs never replace photos (choose e.g. {path.with_suffix('.csv').name})")
        if os.path.realpath(path) in taken or any(_same_file(path, p) for p in inputs):
            raise UserError(f"{option} {path} is one of the input photos; choose another file name")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False
