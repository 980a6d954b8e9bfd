"""Uploads, in memory and within the limit: the request body, its multipart parts, a photo check.

Starlette's own form parser spools files over 1 MB to a temporary file on disk; the body is read
here instead (at most `limit` bytes, else `TooLarge`) and split with python-multipart's
streaming parser into in-memory parts, so an upload never touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from geolocate.data.images import DECODE_ERRORS, open_photo


class TooLarge(Exception):
    """The request body is over the upload limit (answered 413)."""


class BadUpload(ValueError):
    """The request is not a usable upload (answered 400); the message is one line."""


@dataclass
class Part:
    """One multipart field: its form name, its file name (None for a plain field) and its bytes."""

    name: str
    filename: str | None
    data: bytes


async def read_body(request, limit: int) -> bytes:
    """The whole request body, refused as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a missing or lying Content-Length: counted as it arrives
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def parse_multipart(body: bytes, content_type: str | None, max_parts: int = 16) -> list[Part]:
    """The parts of a `multipart/form-data` body.

    Raises:
        BadUpload: not multipart, no boundary, malformed, or more than `max_parts` parts.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadUpload("send the photo as multipart/form-data (a form field named 'photo')")
    parts: list[Part] = []
    state = _PartState()
    parser = MultipartParser(boundary, state.callbacks(parts, max_parts))
    try:
        parser.write(body)
        parser.finalize()
    except BadUpload:
        raise
    except Exception:  # noqa: BLE001 - python-multipart raises several untyped parse errors
        raise BadUpload("malformed multipart body; send the photo as a form field named 'photo'") from None
    return parts


class _PartState:
    """What python-multipart's callbacks build up: the current part's headers and bytes."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.field, self.value = b"", b""
        self.data = bytearray()

    def callbacks(self, parts: list[Part], max_parts: int) -> dict:
        def begin() -> None:
            self.headers, self.data = {}, bytearray()

        def header_end() -> None:
            self.headers[self.field.lower()] = self.value
            self.field, self.value = b"", b""

        def end() -> None:
            if len(parts) >= max_parts:
                raise BadUpload(f"too many form fields (at most {max_parts})")
            parts.append(_part(self.headers, bytes(self.data)))

        return {
            "on_part_begin": begin,
            "on_part_data": lambda b, s, e: self.data.extend(b[s:e]),
            "on_part_end": end,
            "on_header_field": lambda b, s, e: setattr(self, "field", self.field + b[s:e]),
            "on_header_value": lambda b, s, e: setattr(self, "value", self.value + b[s:e]),
            "on_header_end": header_end,
        }


def _part(headers: dict[bytes, bytes], data: bytes) -> Part:
    from python_multipart.multipart import parse_options_header

    _, options = parse_options_header(headers.get(b"content-disposition", b""))
    name = options.get(b"name", b"").decode("utf-8", "replace")
    filename = options.get(b"filename")
    return Part(name, None if filename is None else filename.decode("utf-8", "replace"), data)


def check_photo(data: bytes, label: str) -> None:
    """Refuse bytes that are not an image Pillow reads, or one over its pixel limit, before any decode.

    Raises:
        BadUpload: one line naming `label` (the form field) and what is wrong.
    """
    from PIL import Image

    if not data:
        raise BadUpload(f"{label}: empty upload")
    try:
        with open_photo(data) as img:
            img.verify()  # headers and structure only: the pixels are decoded once, by the model
    except Image.DecompressionBombError:
        raise BadUpload(f"{label}: image too large (over {Image.MAX_IMAGE_PIXELS} pixels, a possible decompression bomb)") from None
    except DECODE_ERRORS:
        raise BadUpload(f"{label}: not an image Pillow can read (JPEG, PNG, WebP…)") from None
