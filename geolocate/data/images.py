"""Decoding photos safely and fast.

Large JPEGs are decoded at reduced size with Pillow's draft mode (DCT scaling: a 2048 px
thumbnail becomes ~256-512 px for a fraction of the work). Every way a file can be bad
(missing, not an image, truncated, a decompression bomb) becomes a `BadImage` with a
one-line reason, so batch prediction can report it and go on.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def expand_photos(items: list[Path]) -> list[Path]:
    """Files as given (missing ones too, so they are reported), directories as their images, sorted."""
    out: list[Path] = []
    for item in items:
        if item.is_dir():
            out += sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            out.append(item)
    return out


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
        with Image.open(path) as img:
            # Checked by hand rather than by turning Pillow's warning into an error:
            # warning filters are process-wide and not thread-safe (predict decodes in threads).
            if Image.MAX_IMAGE_PIXELS and img.width * img.height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(path)
            if min_side and img.format == "JPEG":
                img.draft("RGB", _draft_size(img.size, min_side))
            img = ImageOps.exif_transpose(img)  # a loaded copy, safe to use after the file closes
            return img if img.mode == "RGB" else img.convert("RGB")
    except Image.DecompressionBombError:
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
