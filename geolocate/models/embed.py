"""Backbone image embeddings for photos (`geolocate embed`), one row per photo.

The embedding is `model.forward_features` under the model's own eval preprocessing, the same
call the feature cache makes, so a converted StreetCLIP can be checked against its original
and the vectors can feed a retrieval index. Unreadable photos are reported, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from geolocate.data.images import expand_photos
from geolocate.errors import UserError

@dataclass
class EmbedResult:
    """What `run_embed` did: rows written, the bad photos (one line each), the output file."""

    model: str
    out: Path
    rows: int
    dim: int
    bad: list[str] = field(default_factory=list)


def embed_batch(model, images):
    """Embeddings [B, D] of a preprocessed batch [B, 3, H, W] (no gradients)."""
    import torch

    with torch.inference_mode():
        return model.forward_features(images).float()


def iter_embeddings(model, photos: list[Path], batch_size: int = 32, device: str = "cpu") -> Iterator[tuple[Path, list[float] | str]]:
    """Yield (photo, embedding) per readable photo and (photo, reason) per bad one, in order."""
    import torch

    from geolocate.data.images import BadImage, load_rgb
    from geolocate.data.transforms import eval_transform, input_size

    transform = eval_transform(model.data_config)
    side = input_size(model.data_config)
    pending: list[tuple[Path, torch.Tensor]] = []
    for photo in photos:
        try:
            pending.append((photo, transform(load_rgb(photo, min_side=side))))
        except BadImage as exc:
            yield photo, str(exc)
        if len(pending) == batch_size:
            yield from _flush(model, pending, device)
            pending = []
    yield from _flush(model, pending, device)


def _flush(model, pending, device: str):
    import torch

    if not pending:
        return
    vectors = embed_batch(model, torch.stack([tensor for _, tensor in pending]).to(device)).cpu()
    for (photo, _), vector in zip(pending, vectors):
        yield photo, vector.tolist()


def run_embed(photos: list[Path], model_name: str, out: Path, weights: Path | None = None, pretrained: bool = True,
              batch_size: int = 32, device: str = "cpu") -> EmbedResult:
    """Embed `photos` with the registered backbone `model_name` and write `out` (parquet).

    Args:
        photos: files and/or directories of photos.
        model_name: a registered model (`geolocate models`).
        out: the parquet file to write: columns `path`, `name`, `embedding` (list of floats).
        weights: local weights for the backbone (else the hub when `pretrained`).
        pretrained: without `weights`, load the hub weights (False: random weights, for tests).
    """
    import polars as pl

    from geolocate.atomic import write_parquet
    from geolocate.models.registry import create_model

    files, skipped = expand_photos(photos)
    if not files:
        raise UserError("no photos to embed: pass image files or directories that contain some")
    model = create_model(model_name, num_classes=0, pretrained=pretrained, weights=weights).to(device).eval()
    rows, bad = [], [f"{name}: skipped ({reason})" for name, reason in skipped.items()]
    for photo, result in iter_embeddings(model, files, batch_size, device):
        if isinstance(result, str):
            bad.append(result)
        else:
            rows.append({"path": str(photo), "name": photo.name, "embedding": result})
    if not rows:
        raise UserError(f"none of the {len(files) + len(skipped)} photos could be read (first: {bad[0]})")
    schema = {"path": pl.Utf8, "name": pl.Utf8, "embedding": pl.List(pl.Float32)}
    write_parquet(out, pl.DataFrame(rows, schema=schema))
    return EmbedResult(model=model_name, out=Path(out), rows=len(rows), dim=model.num_features, bad=bad)
