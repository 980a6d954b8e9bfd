"""`geolocate export --verify FILE`: check an export archive, trusting nothing in it.

Verification streams the archive member by member and writes nothing: every regular file is
hashed in memory and compared with `manifest.json`. Members that an extraction could turn
against the machine (absolute paths, `..`, links, devices) are reported and never read.
`extract_export` extracts only an archive that verified clean, through tarfile's 'data'
filter as a second line of defence.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from geolocate.artifacts.digest import parse_sha256sums, sha256_file
from geolocate.artifacts.export import FORMAT, MANIFEST, SUMS, VERSION
from geolocate.artifacts.versions import upgrade
from geolocate.errors import UserError
from geolocate.files import not_regular_reason

_MAX_MANIFEST = 64 << 20
_CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


def verify_export(file: Path | str, sha256: str | None = None) -> list[str]:
    """Everything wrong with an export archive, one line each; an empty list means it is intact.

    Checked: the archive reads to the end; no member is unsafe (absolute, `..`, link, device,
    directory) or duplicated; every member listed in `manifest.json` is there with its size and
    SHA-256; nothing unlisted was added; `SHA256SUMS` agrees with the manifest. The members'
    hashes only vouch for each other (whoever rewrites a member can rewrite the manifest too):
    `sha256`, the archive's digest as `export` printed it or a release recorded it, is the
    trust anchor that vouches for the whole file.
    """
    file = Path(file)
    reason = not_regular_reason(file)
    if reason is not None:
        return [f"{file}: {reason}"]
    if sha256 is not None:
        mismatch = _check_archive_digest(file, sha256)
        if mismatch:
            return [mismatch]
    problems: list[str] = []
    try:
        _check_gzip(file)
        found, documents = _scan(file, problems)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        return problems + [f"{file}: corrupt archive: not a readable tar.gz archive ({exc or type(exc).__name__})"]
    if MANIFEST not in documents:
        return problems + [f"{MANIFEST} is missing: not a geolocate export"]
    try:
        manifest = _parse_manifest(documents[MANIFEST])
    except UserError as exc:
        return problems + [str(exc)]
    expected = {m["name"]: (m["sha256"], m["size"]) for m in manifest["members"]}
    return problems + _compare(expected, found) + _check_sums(documents.get(SUMS), expected)


def _check_archive_digest(file: Path, expected: str) -> str | None:
    """A line saying the archive is not the one `expected` (a SHA-256 in hex) names, or None."""
    expected = expected.strip().lower()
    if not _HEX64.fullmatch(expected):
        raise UserError(f"--sha256 {expected[:80]!r}: expected 64 hexadecimal digits (the SHA-256 `export` printed)")
    actual = sha256_file(file)
    if actual != expected:
        return f"{file}: the archive's SHA-256 is {actual}, not the expected {expected}: it is not the archive you were given a digest for"
    return None


def _scan(file: Path, problems: list[str]) -> tuple[dict[str, tuple[str, int]], dict[str, bytes]]:
    """Hash every safe member; return {name: (sha256, size)} and the bytes of the two listings."""
    found: dict[str, tuple[str, int]] = {}
    documents: dict[str, bytes] = {}
    with tarfile.open(file, "r|*") as tar:  # stream mode: one pass, no seeking, nothing written
        for member in _members(tar):
            problem = unsafe_reason(member)
            if problem:
                problems.append(f"member {member.name!r}: {problem} (rejected)")
            elif member.name in found:
                problems.append(f"member {member.name!r}: appears twice (an extraction would overwrite the first)")
            elif member.name in (MANIFEST, SUMS) and member.size <= _MAX_MANIFEST:
                data = documents[member.name] = tar.extractfile(member).read()
                found[member.name] = (hashlib.sha256(data).hexdigest(), len(data))
            else:
                found[member.name] = _hash(tar.extractfile(member))
    return found, documents


def _members(tar: tarfile.TarFile):
    """The archive's members. tarfile's stream mode ends quietly at a damaged header or a cut
    stream, so what follows the last member must be the zero blocks that close a tar."""
    yield from tar
    while chunk := tar.fileobj.read(_CHUNK):
        if chunk.strip(b"\0"):
            raise tarfile.ReadError("unreadable data after the last good member")


def _check_gzip(file: Path) -> None:
    """Decompress a gzip archive to the end: its CRC and length catch a damaged or cut file
    (tarfile's own stream reader checks neither)."""
    with open(file, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return
    with gzip.open(file, "rb") as stream:
        while stream.read(_CHUNK):
            pass


def unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why extracting `member` could write outside its target or create something odd, or None."""
    name = member.name
    path = PurePosixPath(name)
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in path.parts or "\\" in name:
        return "path leaves the archive's directory"
    if member.issym() or member.islnk():
        return f"link to {member.linkname!r}"
    if member.isdir():
        return "directory entry (exports hold files only)"
    if not member.isreg():
        return "device, fifo or other special file"
    return None


def _hash(handle) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _parse_manifest(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise UserError(f"{MANIFEST} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise UserError(f"{MANIFEST} is not a JSON object")
    doc = upgrade(doc, fmt=FORMAT, current=VERSION, migrations={}, source=MANIFEST)
    members = doc.get("members")
    if not isinstance(members, list) or not all(_valid_member(m) for m in members):
        raise UserError(f"{MANIFEST} has no valid member list (each member needs a name, a 64-digit hex sha256 and a size)")
    return doc


def _valid_member(member: Any) -> bool:
    return (
        isinstance(member, dict)
        and isinstance(member.get("name"), str)
        and isinstance(member.get("sha256"), str)
        and bool(_HEX64.fullmatch(member["sha256"]))
        and type(member.get("size")) is int
        and member["size"] >= 0
    )


def _compare(expected: dict[str, tuple[str, int]], found: dict[str, tuple[str, int]]) -> list[str]:
    problems = []
    for name, (sha256, size) in expected.items():
        if name not in found:
            problems.append(f"{name}: listed in {MANIFEST} but missing from the archive")
        elif found[name][0] != sha256:
            got = found[name]
            problems.append(f"{name}: SHA-256 mismatch (expected {sha256[:12]}…, got {got[0][:12]}…; size {size} → {got[1]})")
        elif found[name][1] != size:
            problems.append(f"{name}: size mismatch ({MANIFEST} says {size} bytes, the archive holds {found[name][1]})")
    for name in found.keys() - expected.keys() - {MANIFEST, SUMS}:
        problems.append(f"{name}: not listed in {MANIFEST} (extra member)")
    return problems


def _check_sums(text: bytes | None, expected: dict[str, tuple[str, int]]) -> list[str]:
    """SHA256SUMS is what `sha256sum -c` reads after extraction: it must say what the manifest says."""
    if text is None:
        return [f"{SUMS} is missing"]
    try:
        sums = parse_sha256sums(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{SUMS}: {exc}"]
    manifest = {name: sha256 for name, (sha256, _) in expected.items()}
    return [f"{SUMS} disagrees with {MANIFEST} about {name}" for name in sorted(sums.keys() | manifest.keys()) if sums.get(name) != manifest.get(name)]


def extract_export(file: Path | str, target: Path | str) -> Path:
    """Extract a verified export into `target` (created), with tarfile's 'data' filter.

    Raises:
        UserError: the archive did not verify; nothing was extracted.
    """
    problems = verify_export(file)
    if problems:
        raise UserError(f"{file} did not verify ({len(problems)} problems, first: {problems[0]}); nothing extracted")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(file, "r:*") as tar:
        tar.extractall(target, filter="data")
    return target
