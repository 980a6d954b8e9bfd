"""Keep the Mapillary token out of every artifact geolocate writes or ships.

The token lives in the `MAPILLARY_TOKEN` environment variable only. Before a sidecar, a release
or an export leaves the machine, its bytes are scanned for the token's current value and, in
text, for the `MLY|` prefix every Mapillary client token starts with. The prefix is not looked
for in binary files (weights, photos): four bytes occur there by chance.
"""

from __future__ import annotations

import os
from typing import Mapping

from geolocate.errors import UserError

TOKEN_PREFIX = b"MLY|"
_MIN_TOKEN_LEN = 8  # shorter values (a placeholder, an empty string) would match by accident


def secret_patterns(binary: bool = False, env: Mapping[str, str] | None = None) -> list[bytes]:
    """Byte strings that must not appear in an artifact: the token value, plus `MLY|` in text."""
    from geolocate.acquire.client import TOKEN_ENV  # lazily: the client imports httpx, not needed to load this module

    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "").strip()
    patterns = [token.encode()] if len(token) >= _MIN_TOKEN_LEN else []
    if not binary:
        patterns.append(TOKEN_PREFIX)
    return patterns


def find_secret(data: bytes, patterns: list[bytes]) -> bytes | None:
    """The first pattern found in `data`, or None."""
    return next((pattern for pattern in patterns if pattern in data), None)


def describe(pattern: bytes) -> str:
    """How to name a found secret in a message without printing it."""
    from geolocate.acquire.client import TOKEN_ENV  # lazily, see secret_patterns

    return "the Mapillary token prefix MLY|" if pattern == TOKEN_PREFIX else f"the value of ${TOKEN_ENV}"


def check_text(text: str, where: object) -> None:
    """Raise when `text` (about to be written to `where`) holds the token.

    Raises:
        UserError: naming the file and what was found, never the secret itself.
    """
    found = find_secret(text.encode("utf-8"), secret_patterns())
    if found is not None:
        raise UserError(f"refusing to write {where}: it would contain {describe(found)}; keep the token in the environment only")


class StreamScanner:
    """Scans a stream chunk by chunk, carrying an overlap so a match split across chunks is seen."""

    def __init__(self, patterns: list[bytes]) -> None:
        self.patterns = patterns
        self._keep = max((len(p) for p in patterns), default=1) - 1
        self._tail = b""
        self.found: bytes | None = None

    def update(self, chunk: bytes) -> None:
        if self.found is not None or not self.patterns:
            return
        window = self._tail + chunk
        self.found = find_secret(window, self.patterns)
        self._tail = window[-self._keep :] if self._keep else b""
