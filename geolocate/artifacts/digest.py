"""SHA-256 digests: of files, of the data a model was trained on, and `SHA256SUMS` listings.

`SHA256SUMS` uses the format of coreutils' `sha256sum` ("<hex>  <name>"), so a user can check
a release or an extracted export with `sha256sum -c SHA256SUMS` and no geolocate at all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (weights and photos can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprint(files: Iterable[Path]) -> str:
    """One SHA-256 over the given files (name and content; a missing file counts as absent).

    Training stores it in every checkpoint (manifest, labels and split), so two runs can be
    compared knowing whether they saw the same data.
    """
    digest = hashlib.sha256()
    for path in files:
        path = Path(path)
        state = sha256_file(path) if path.is_file() else "absent"
        digest.update(f"{path.name}:{state}\n".encode())
    return digest.hexdigest()


def format_sha256sums(hashes: dict[str, str]) -> str:
    """`SHA256SUMS` text for {name: hex}, sorted by name."""
    return "".join(f"{hexdigest}  {name}\n" for name, hexdigest in sorted(hashes.items()))


def parse_sha256sums(text: str) -> dict[str, str]:
    """{name: hex} from `SHA256SUMS` text (binary-mode `*name` accepted, blank lines skipped).

    Raises:
        ValueError: a line that is not "<64 hex>  <name>".
    """
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        hexdigest, sep, name = line.partition("  ")
        if not sep:
            hexdigest, sep, name = line.partition(" *")
        if not sep or len(hexdigest) != 64 or not name:
            raise ValueError(f"SHA256SUMS line {number} is not '<sha256>  <name>': {line[:80]!r}")
        out[name] = hexdigest.lower()
    return out


def verify_sha256sums(directory: Path) -> list[str]:
    """Problems found checking `directory/SHA256SUMS` against the files (empty list: all good)."""
    sums = Path(directory) / "SHA256SUMS"
    if not sums.is_file():
        return [f"{sums} is missing"]
    try:
        expected = parse_sha256sums(sums.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for name, hexdigest in expected.items():
        path = Path(directory) / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != hexdigest:
            problems.append(f"{name}: SHA-256 mismatch (the file was changed)")
    return problems
