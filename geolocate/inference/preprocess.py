"""A model's eval preprocessing in PIL + numpy: the ONNX path runs it without importing torch.

It mirrors `geolocate.data.transforms.eval_transform` step for step (torchvision resizes a PIL
image with PIL itself, so the pixels are the same; a test checks the two agree): resize the
shorter side to `size / crop_pct` with the model's interpolation, centre-crop `size`, scale to
[0, 1], normalise with the model's mean and std. Both predict paths use it, so they feed their
networks identical arrays; `uncropped` stops before the crop, for the test-time views.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from geolocate.data.tta import crop_offsets, tta_views

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}


class Preprocess:
    """Photo (PIL RGB) → float32 [3, H, W], as the model's sidecar `preprocessing` says."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.size = int(config["input_size"][-1])
        self.resize = int(math.floor(self.size / float(config.get("crop_pct", 0.875))))
        self.resample = _RESAMPLE.get(str(config.get("interpolation", "bilinear")), Image.Resampling.BILINEAR)
        self.mean = np.asarray(config["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(config["std"], dtype=np.float32).reshape(3, 1, 1)

    def __call__(self, img: Image.Image) -> np.ndarray:
        img = self._resized(img)
        w, h = img.size
        top, left = crop_offsets(h, w, self.size, crops=1)[0]
        # Crop before normalising: only the pixels the network sees are converted.
        return self._normalised(img.crop((left, top, left + self.size, top + self.size)))

    def pixels(self, img: Image.Image, crops: int = 0) -> np.ndarray:
        """What a network sees of a photo: its centre crop [3, S, S], or with `crops` (1 or 3) its
        test-time views [2 · crops, 3, S, S] (`data.tta.tta_views`), as evaluation saw them."""
        if not crops:
            return self(img)
        return tta_views(self.uncropped(img), self.size, crops)

    def uncropped(self, img: Image.Image) -> np.ndarray:
        """The resized, normalised photo before the centre crop, float32 [3, H, W]: what
        `data.tta.tta_views` cuts the test-time views from (its first view is `self(img)`)."""
        return self._normalised(self._resized(img))

    def _resized(self, img: Image.Image) -> Image.Image:
        return img.resize(_shorter_side_to(img.size, self.resize), self.resample)

    def _normalised(self, img: Image.Image) -> np.ndarray:
        pixels = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
        return (pixels - self.mean) / self.std


def _shorter_side_to(size: tuple[int, int], short: int) -> tuple[int, int]:
    # torchvision's rule for an int size: the shorter side becomes `short`, the longer is truncated.
    w, h = size
    if w <= h:
        return short, int(short * h / w)
    return int(short * w / h), short
