"""Decoding photos safely and fast.

Large JPEGs are decoded at reduced size with Pillow's draft mode (DCT scaling: a 2048 px
thumbnail becomes ~256-512 px for a fraction of the work). Every way a file can be bad
(missing, not an image, truncated, a decompression bomb) becomes a `BadImage` with a
one-line reason, so batch prediction can report it and go on.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError


class BadImage(ValueError):
    """A file that cannot be used as a photo; the message is one line."""


def load_rgb(path: Path | str, min_side: int | None = None) -> Image.Image:
    """Open `path` as an RGB image, EXIF-rotated, decoded no larger than needed for `min_side`.

    Raises:
        BadImage: missing, unreadable, not an image, truncated or over Pillow's pixel limit.
    """
    path = Path(path)
    if not path.is_file():
        raise BadImage(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if min_side and img.format == "JPEG":
                    img.draft("RGB", _draft_size(img.size, min_side))
                img = ImageOps.exif_transpose(img)
                return img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"{path}: image too large (over {Image.MAX_IMAGE_PIXELS} pixels, a possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise BadImage(f"{path}: not an image Pillow can read") from None
    except OSError as exc:
        raise BadImage(f"{path}: unreadable or truncated image ({exc})") from None


def _draft_size(size: tuple[int, int], min_side: int) -> tuple[int, int]:
    # Draft picks the smallest DCT scale that stays >= the requested size, so ask for a box
    # whose shorter side is `min_side` (with margin for the random crop).
    w, h = size
    scale = max(min_side * 1.15 / min(w, h), 1e-6)
    return max(1, int(w * scale)), max(1, int(h * scale))
