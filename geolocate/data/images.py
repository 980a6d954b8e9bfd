"""Decoding photos safely and fast.

Large JPEGs are decoded at reduced size with Pillow's draft mode (DCT scaling: a 2048 px
thumbnail becomes ~256-512 px for a fraction of the work). Every way a file can be bad
(missing, not an image, truncated, a decompression bomb) becomes a `BadImage` with a
one-line reason, so batch prediction can report it and go on.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageOps, UnidentifiedImageError

from geolocate.files import files_under, not_regular_reason


# Every way Pillow reports bad data: unidentified or truncated files are OSErrors, a garbled
# header can raise SyntaxError or ValueError, an image over the pixel limit DecompressionBombError.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def expand_photos(items: list[Path]) -> tuple[list[Path], dict[str, str]]:
    """The photos `items` name, and {entry: reason} for the entries of a folder that were skipped.

    A file is taken as given (a missing one too, so it is reported; a link named by the user is
    the user's word). A folder gives the regular image files inside it (`files.files_under`):
    a link, a linked folder or a FIFO found inside it is skipped with its reason, never opened,
    so `predict photos/` cannot be led to read a file elsewhere or block on a pipe.
    """
    out: list[Path] = []
    skipped: dict[str, str] = {}
    for item in items:
        if item.is_dir():
            found, refused = files_under(item, IMAGE_SUFFIXES)
            out += found
            skipped.update(refused)
        else:
            out.append(item)
    return out, skipped


class BadImage(ValueError):
    """A file that cannot be used as a photo; the message is one line."""


@contextlib.contextmanager
def open_photo(source: Path | str | bytes) -> Iterator[Image.Image]:
    """`Image.open` over a file or bytes that refuses an image over Pillow's pixel limit before decoding it.

    Raises:
        one of DECODE_ERRORS (a missing file is a FileNotFoundError, an OSError).
    """
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        # Checked by hand rather than by turning Pillow's warning into an error:
        # warning filters are process-wide and not thread-safe (predict decodes in threads).
        if Image.MAX_IMAGE_PIXELS and img.width * img.height > Image.MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(f"{img.width * img.height} pixels")
        yield img


def decoded_size(source: Path | str | bytes, scale: int = 1, verify: bool = False) -> tuple[int, int] | None:
    """(width, height) when `source` decodes completely; None when it does not.

    `scale` > 1 decodes JPEGs at 1/scale (DCT scaling): cheap, yet a truncated or garbled file
    still fails. `verify` also runs Pillow's structural check (checksums) first.
    """
    try:
        if verify:
            with open_photo(source) as img:
                img.verify()
        with open_photo(source) as img:
            size = img.size
            if scale > 1:
                img.draft("RGB", (max(1, img.width // scale), max(1, img.height // scale)))
            img.load()
        return size
    except DECODE_ERRORS:
        return None


def decodes(source: Path | str | bytes, scale: int = 8) -> bool:
    """True when Pillow decodes `source` (JPEGs at 1/`scale`, see `decoded_size`)."""
    return decoded_size(source, scale) is not None


def load_rgb(path: Path | str | bytes, min_side: int | None = None, margin: float = 1.15) -> Image.Image:
    """Open `path` (or a photo's bytes) as an RGB image, EXIF-rotated, decoded no larger than needed for `min_side`.

    `margin` widens the JPEG draft target (training's random crops zoom in); prediction, which
    resizes to exactly `min_side`, passes 1.0 and gets the smallest DCT scale that still fits.
    The image keeps its EXIF block (`img.getexif()`), so a caller reads GPS without a second open.

    Raises:
        BadImage: missing, unreadable, not an image, truncated or over Pillow's pixel limit.
    """
    name = "photo" if isinstance(path, bytes) else Path(path)
    reason = None if isinstance(path, bytes) else not_regular_reason(name)  # from stat: a FIFO is refused before an open could block on it
    if reason is not None:
        raise BadImage(f"{name}: {reason}")
    try:
        with open_photo(path if isinstance(path, bytes) else name) as img:
            if min_side and img.format == "JPEG":
                img.draft("RGB", _draft_size(img.size, min_side, margin))
            img = ImageOps.exif_transpose(img)  # a loaded copy, safe to use after the file closes
            return img if img.mode == "RGB" else img.convert("RGB")
    except Image.DecompressionBombError:
        raise BadImage(f"{name}: image too large (over {Image.MAX_IMAGE_PIXELS} pixels, a possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise BadImage(f"{name}: not an image Pillow can read") from None
    except DECODE_ERRORS as exc:
        raise BadImage(f"{name}: unreadable or truncated image ({exc})") from None


def _draft_size(size: tuple[int, int], min_side: int, margin: float = 1.15) -> tuple[int, int]:
    # Draft picks the smallest DCT scale that stays >= the requested size, so ask for a box
    # whose shorter side is `min_side` (times the margin).
    w, h = size
    scale = max(min_side * margin / min(w, h), 1e-6)
    return max(1, int(w * scale)), max(1, int(h * scale))
