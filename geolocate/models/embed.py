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


def iter_embeddings(model, photos: list[Path], batch_size: int = 32, device: str = "cpu",
                    crops: int = 0) -> Iterator[tuple[Path, list[float] | str]]:
    """Yield (photo, embedding) per readable photo and (photo, reason) per bad one, in order.

    Args:
        crops: 0 for the eval transform's one centre crop; 1 or 3 for the test-time views
            (`data.tta`: each crop and its mirror image), rows of one pass, their embeddings averaged.
    """
    import torch

    from geolocate.data.images import BadImage, load_rgb
    from geolocate.data.transforms import eval_transform, eval_tta_transform, input_size
    from geolocate.data.tta import n_views

    transform = eval_tta_transform(model.data_config, crops=crops) if crops else eval_transform(model.data_config)
    views = n_views(crops) if crops else 1
    per_batch = max(1, batch_size // views)  # about `batch_size` network rows a pass either way
    side = input_size(model.data_config)
    pending: list[tuple[Path, torch.Tensor]] = []
    for photo in photos:
        try:
            pending.append((photo, transform(load_rgb(photo, min_side=side))))
        except BadImage as exc:
            yield photo, str(exc)
        if len(pending) == per_batch:
            yield from _flush(model, pending, device, views)
            pending = []
    yield from _flush(model, pending, device, views)


def _flush(model, pending, device: str, views: int = 1):
    import torch

    from geolocate.data.tta import average_views, flatten_views

    if not pending:
        return
    batch = torch.stack([tensor for _, tensor in pending])
    vectors = embed_batch(model, (flatten_views(batch) if views > 1 else batch).to(device)).cpu()
    for (photo, _), vector in zip(pending, average_views(vectors, views) if views > 1 else vectors):
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
