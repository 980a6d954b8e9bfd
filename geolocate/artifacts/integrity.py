"""A checkpoint's files are the ones it was written with: digests checked before anything is loaded.

- A release (`releases/<tag>/`, written by `freeze`) is a signed whole: every file predict
  loads from it (sidecar, weights, graph, index; a four-view release's bundle and phase
  checkpoints) must be listed in its `SHA256SUMS` with the same SHA-256, and none may be a link. A file changed, swapped, added or linked after the freeze
  is refused in one line before it is parsed.
- A run's or a copied checkpoint's sidecar records the digests of its own graph (`onnx.sha256`,
  written by `export-model` / `freeze`) and retrieval index (`retrieval.index_sha256`, written by
  `evaluate`): a graph or an index swapped beside the weights is refused, not trusted because
  its weights id matches.
Digests vouch that files belong together; who may write a release's directory is the
filesystem's business (README, "Security").
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from pathlib import Path

from geolocate.artifacts.digest import parse_sha256sums, sha256_file
from geolocate.artifacts.resolve import COMPANION_SUFFIXES, file_of
from geolocate.errors import UserError
from geolocate.files import not_regular_reason

SUMS = "SHA256SUMS"
RELEASE_RECORD = "RELEASE.json"
CHECKPOINT_SUFFIXES = (".json", ".safetensors", *COMPANION_SUFFIXES)
HOW_TO_FIX = "restore the release from its export archive (`geolocate export --verify`), or freeze the run again under a new tag"


def verify_checkpoint(stem: Path | str) -> None:
    """Refuse a checkpoint whose files are links or, in a release, disagree with its `SHA256SUMS`.

    Raises:
        UserError: one line naming the first file that is wrong.
    """
    stem = Path(stem)
    present = [file_of(stem, s) for s in CHECKPOINT_SUFFIXES if file_of(stem, s).is_symlink() or file_of(stem, s).exists()]
    for path in present:
        _require_own_file(path)
    sums = _release_sums(stem.parent)
    if sums is None:
        return  # not a release: the sidecar's own digests are checked when its graph and index load
    expected = _read_sums(sums)
    for path in present:
        _check(path, expected.get(path.name), sums)
    for suffix in CHECKPOINT_SUFFIXES:  # a listed companion that went missing changes what predict does
        path = file_of(stem, suffix)
        if path.name in expected and path not in present:
            raise UserError(f"{path} is listed in {sums} but missing; {HOW_TO_FIX}")


def verify_file(path: Path | str) -> None:
    """Refuse one file a model is read from besides its checkpoints (a four-view bundle's JSON)
    when it is a link or not a regular file, or, in a release, disagrees with its `SHA256SUMS`.

    Raises:
        UserError: one line naming the file.
    """
    path = Path(path)
    _require_own_file(path)
    sums = _release_sums(path.parent)
    if sums is not None:
        _check(path, _read_sums(sums).get(path.name), sums)


def _require_own_file(path: Path, what: str | None = None) -> None:
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link; a model's files are never read through links (copy the file itself)")
    if (reason := not_regular_reason(path)) is not None:  # a FIFO would block the hash forever
        raise UserError(f"{what} {path}: {reason}" if what else f"{path}: {reason}")


def _release_sums(folder: Path) -> Path | None:
    """`folder`'s SHA256SUMS when `folder` is a release (it has one, or a RELEASE.json), else None."""
    sums = folder / SUMS
    if not (sums.exists() or sums.is_symlink() or (folder / RELEASE_RECORD).exists()):
        return None
    if folder.is_symlink():
        raise UserError(f"release {folder} is a symbolic link; a release is read only where it lies (copy it instead)")
    return sums


def verify_companion(path: Path | str, recorded: object, what: str) -> None:
    """Refuse `path` (a graph or an index) when the sidecar recorded another SHA-256 for it.

    An older sidecar without a recorded digest is accepted: the graph's and the index's
    signatures are still checked before use (`inference.graph_check`).
    """
    if recorded is None:
        return
    path = Path(path)
    _require_own_file(path, what)
    if not isinstance(recorded, str) or _digest(path) != recorded.lower():
        raise _not_the_companion(path, what)


def read_companion(path: Path | str, recorded: object, what: str) -> bytes:
    """The bytes of `path` (a graph), read once, refused as `verify_companion` refuses the file,
    the digest taken of those very bytes.

    The caller uses the bytes returned, never the file again: a file swapped after its digest
    was checked is not the one that runs. Links and special files are refused even when an
    older sidecar recorded no digest (a FIFO would block the read).

    Raises:
        UserError: a link, not a regular file, unreadable, or a SHA-256 other than `recorded`.
    """
    path = Path(path)
    _require_own_file(path, what)
    data = _read_regular(path, what)
    if recorded is not None and (not isinstance(recorded, str) or hashlib.sha256(data).hexdigest() != recorded.lower()):
        raise _not_the_companion(path, what)
    return data


def _read_regular(path: Path, what: str) -> bytes:
    """`path`'s bytes through a descriptor opened without following a link, and refused unless a
    regular file's: the checks by name above cannot see a swap between them and the open."""
    # O_NONBLOCK: a FIFO opens at once, then is refused; O_BINARY: Windows would translate line ends.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        with open(os.open(path, flags), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UserError(f"{what} {path}: not a regular file (a FIFO, device or socket)")
            return handle.read()
    except OSError as exc:  # ELOOP: a link put there since the check
        raise UserError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None


def _not_the_companion(path: Path, what: str) -> UserError:
    return UserError(f"{path} is not the {what} its checkpoint was written with (SHA-256 differs from the sidecar's); "
                     f"export the graph again with `geolocate export-model` or re-run `geolocate evaluate`")


def _read_sums(sums: Path) -> dict[str, str]:
    if sums.is_symlink():
        raise UserError(f"{sums} is a symbolic link; a release's files are never read through links; {HOW_TO_FIX}")
    try:
        return parse_sha256sums(sums.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"release {sums.parent} has no {SUMS}: its files cannot be checked; {HOW_TO_FIX}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{sums} is unreadable ({exc}); {HOW_TO_FIX}") from None


def _check(path: Path, expected: str | None, sums: Path) -> None:
    if expected is None:
        raise UserError(f"{path} is not listed in {sums}: it was added after the release was frozen; {HOW_TO_FIX}")
    if _digest(path) != expected:
        raise UserError(f"{path} does not match {sums} (SHA-256 differs): the file was changed after the release was frozen; {HOW_TO_FIX}")


def _digest(path: Path) -> str:
    """The file's SHA-256, hashed once per process while it is unchanged: a release's graph and
    index are checked against SHA256SUMS and again against the sidecar's digest when they load."""
    st = os.stat(path)
    return _digest_of(os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest_of(real: str, inode: int, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(real))
