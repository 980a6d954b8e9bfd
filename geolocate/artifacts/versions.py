"""Versioned documents: which geolocate wrote a file, and how an older one is brought up to date.

Every JSON document geolocate keeps (checkpoint sidecars, release records, export manifests)
carries `format` and `version`. A reader upgrades an older version step by step through
migrations and refuses a newer one with a message naming the geolocate that wrote it, so a
file from the future never half-loads.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Callable, Mapping

from geolocate.errors import UserError

Migration = Callable[[dict[str, Any]], dict[str, Any]]

_LIBRARIES = ("torch", "timm", "safetensors", "numpy", "polars")


def library_versions() -> dict[str, str]:
    """Versions of geolocate and the libraries a checkpoint depends on (read from package
    metadata, so this never imports torch)."""
    import platform

    from geolocate import __version__

    out = {"geolocate": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def writer_of(doc: Mapping[str, Any]) -> str:
    """'geolocate 0.3.0' (or 'an unknown geolocate') from a document's `versions` field."""
    versions = doc.get("versions")
    version = versions.get("geolocate") if isinstance(versions, Mapping) else None
    return f"geolocate {version}" if version else "an unknown geolocate"


def upgrade(
    doc: dict[str, Any],
    *,
    fmt: str,
    current: int,
    migrations: Mapping[int, Migration],
    source: object,
) -> dict[str, Any]:
    """Check `doc`'s format and version and migrate it to `current`.

    A document without `version` is version 0 (the migration from 0 decides whether it is really
    one of ours). `migrations[v]` turns version v into v + 1.

    Raises:
        UserError: another format, a version newer than `current`, or an old version with no
            migration path; the message names the file and the geolocate that wrote it.
    """
    if not isinstance(doc, dict):
        raise UserError(f"{source}: not a {fmt} document (expected a JSON object)")
    version = doc.get("version", 0)
    if doc.get("format", fmt) != fmt or not isinstance(version, int):
        raise UserError(f"{source}: unknown format {doc.get('format')!r} version {version!r}; expected {fmt!r}")
    if version > current:
        from geolocate import __version__

        raise UserError(
            f"{source} was written by {writer_of(doc)} ({fmt} version {version}); this geolocate "
            f"{__version__} reads up to version {current}: upgrade geolocate to use it"
        )
    while version < current:
        if version not in migrations:
            raise UserError(f"{source}: {fmt} version {version} (written by {writer_of(doc)}) can no longer be read")
        doc = migrations[version](dict(doc))
        version = doc["version"]
    return doc
