"""What a prediction accepts as a photo: a path, the file's bytes, a PIL image or a numpy array.

Every form is decoded here, once: the RGB image the network sees and the EXIF GPS truth (when
the photo carries one) come from the same decode, so a photo file is opened a single time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

from geolocate.data.images import BadImage, load_rgb
from geolocate.acquire.exif import image_latlon

Source = Union[str, Path, bytes, Image.Image, np.ndarray]


@dataclass
class Decoded:
    """A photo ready for preprocessing, and where its EXIF says it was taken."""

    image: Image.Image
    gps: tuple[float, float] | None


def decode(source: Source, min_side: int | None = None) -> Decoded:
    """The RGB image of `source` (EXIF-rotated) and its EXIF GPS position.

    Raises:
        BadImage: the source is not a photo, with a one-line reason.
    """
    if isinstance(source, (str, Path, bytes)):
        image = load_rgb(source, min_side, margin=1.0)
    elif isinstance(source, Image.Image):
        image = _rgb(ImageOps.exif_transpose(source))
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
    else:
        raise BadImage(f"cannot read a photo from a {type(source).__name__}: give a path, bytes, a PIL image or a numpy array")
    return Decoded(image, image_latlon(image))


def source_name(source: Source, index: int) -> str:
    """How results name a source: the path as given, else its position (`photo 2`)."""
    return str(source) if isinstance(source, (str, Path)) else f"photo {index + 1}"


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _from_array(array: np.ndarray) -> Image.Image:
    """An H×W×3 (or H×W grey) uint8 array, as PIL and OpenCV-free tools hand them out."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise BadImage(f"a numpy photo must be an H×W×3 uint8 array (RGB), got {array.dtype} {array.shape}")
    return _rgb(Image.fromarray(array))
