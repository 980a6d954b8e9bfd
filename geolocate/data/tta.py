"""Test-time augmentation: a photo seen as a few crops and their mirror images, the answers averaged.

Evaluation normally sees one centre crop of the resized photo. Here the resized, normalised photo
(`[C, H, W]`, not yet cropped) gives `crops` square crops along its width (the centre crop the eval
transform takes, then the left and right ends) and the mirror image of each: `2 × crops` views.
The network runs on all of them and each photo's logits and embeddings are the mean over its
views. A mean of logits is, after the softmax, the normalised geometric mean of the views'
probabilities (the calibration temperature still applies after it). The view set is closed under
mirroring, so the averaged answer for a mirrored photo is the same as for the photo (when the crop
margins are even).

Pure functions on numpy arrays or torch tensors alike (torch is imported only to stack its own
tensors), so the torch path and the ONNX path of `predict` build the same views from the same pixels.
"""

from __future__ import annotations

from typing import Any, Sequence

TTA_SETTINGS = ("auto", "on", "off")  # eval.tta: auto = on when val says it helps
CROPS = (1, 3)  # the centre crop only, or also the two ends of the width


def n_views(crops: int = 3) -> int:
    """Views per photo: each crop and its mirror."""
    _check_crops(crops)
    return 2 * crops


def crop_offsets(height: int, width: int, size: int, crops: int = 3) -> list[tuple[int, int]]:
    """(top, left) of each square crop of side `size`: the centre (rounded as torchvision's
    CenterCrop and `inference.Preprocess` round it), then the left end, then the right end."""
    _check_crops(crops)
    if height < size or width < size:
        raise ValueError(f"a {height}×{width} image has no {size}×{size} crop; resize it first")
    top = int(round((height - size) / 2.0))
    centre = (top, int(round((width - size) / 2.0)))
    return [centre] if crops == 1 else [centre, (top, 0), (top, width - size)]


def tta_views(image: Any, size: int, crops: int = 3) -> Any:
    """`image` [C, H, W] (resized and normalised, not cropped) → its views [2 × crops, C, size, size]:
    each crop followed by its mirror image."""
    height, width = int(image.shape[-2]), int(image.shape[-1])
    views = []
    for top, left in crop_offsets(height, width, size, crops):
        crop = image[..., top:top + size, left:left + size]
        views += [crop, _mirror(crop)]
    return _stack(views)


def tta_batch(images: Sequence[Any], size: int, crops: int = 3) -> Any:
    """The views of every image, one photo's consecutive: [B × 2·crops, C, size, size]."""
    return _cat([tta_views(image, size, crops) for image in images])


def flatten_views(batch: Any) -> Any:
    """[B, V, C, H, W] (a loader that returns each photo's views) → [B × V, C, H, W]."""
    return batch.reshape((-1, *tuple(batch.shape[2:])))


def average_views(values: Any, views: int) -> Any:
    """Mean over each photo's `views` consecutive rows: [B × views, ...] → [B, ...] (logits, embeddings)."""
    rows = int(values.shape[0])
    if views < 1 or rows % views:
        raise ValueError(f"{rows} rows are not whole photos of {views} views each")
    return values.reshape((rows // views, views, *tuple(values.shape[1:]))).mean(1)


def use_tta(setting: str, plain_score: float | None = None, tta_score: float | None = None) -> bool:
    """Whether to predict with TTA: `on`, `off`, or `auto`: when it scores strictly better on val.

    Args:
        setting: `eval.tta`.
        plain_score, tta_score: val scores without and with TTA, lower is better (the same rule
            every small-data choice ranks by, e.g. `evaluate.baselines.bar_scores(...)["score"]`).
    """
    if setting not in TTA_SETTINGS:
        raise ValueError(f"eval.tta is one of {', '.join(TTA_SETTINGS)}, not {setting!r}")
    if setting != "auto":
        return setting == "on"
    if plain_score is None or tta_score is None:
        raise ValueError("eval.tta = auto needs the val score with and without TTA")
    return bool(tta_score < plain_score)  # a tie keeps one view: cheaper, and nothing to gain


def _check_crops(crops: int) -> None:
    if crops not in CROPS:
        raise ValueError(f"TTA crops is one of {', '.join(map(str, CROPS))}, not {crops!r}")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _mirror(x: Any) -> Any:
    if _is_torch(x):
        return x.flip(-1)
    import numpy as np

    return np.ascontiguousarray(x[..., ::-1])


def _stack(items: list) -> Any:
    if _is_torch(items[0]):
        import torch

        return torch.stack(items)
    import numpy as np

    return np.stack(items)


def _cat(items: list) -> Any:
    if _is_torch(items[0]):
        import torch

        return torch.cat(items)
    import numpy as np

    return np.concatenate(items)
