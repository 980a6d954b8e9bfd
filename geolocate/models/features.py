"""Frozen-backbone features, computed once per photo and cached on disk, for both systems.

With a frozen backbone every epoch of a head (a scout's fusion head, the ensemble fit, the
sniper, France v1's linear probe) would push the same photos through the same network again;
caching the per-view embeddings turns those phases into seconds of matrix work on a CPU. The
k-NN baselines of both systems read the same files. The cache lives in
`data/features/<model>/<fingerprint>.safetensors`: a float32 tensor [N, D] whose row order (the
image ids) is stored in the same file's metadata, so one atomic rename publishes rows and ids
together and a crash can never pair an id list with another tensor. A file whose ids do not
match its rows is discarded and rebuilt. The fingerprint hashes the backbone's weights and the
preprocessing, so new weights or another input size never read stale features: they get
another file. Only the backbone counts, not the head on top of it: a v1 classifier with its cells
head and the bare backbone the baselines build share one file.

`embed_images` is the one embedding code path: the cache and `geolocate embed` both use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from geolocate import atomic
from geolocate.lock import DataLock

FORMAT = "geolocate.features"
_LOCK_WAIT_S = 60.0


def backbone_of(model: nn.Module) -> nn.Module:
    """What produces one view's embedding: the model's `backbone` (single- or multi-view), else the model."""
    return getattr(model, "backbone", model)


def embedding_fn(model: nn.Module):
    """images [B, 3, H, W] → embeddings [B, D] (the per-view path of a multi-view model)."""
    return model.backbone if hasattr(model, "view_features") else model.forward_features


def fingerprint(model: nn.Module, preprocessing: dict) -> str:
    """SHA-256 of the backbone's weights (names, shapes, bytes) and the preprocessing."""
    digest = hashlib.sha256(json.dumps(preprocessing, sort_keys=True, default=list).encode())
    for name, tensor in sorted(backbone_of(model).state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def preprocessing_of(model: nn.Module) -> dict:
    """The model's preprocessing as plain JSON values."""
    dc = model.data_config
    return {"input_size": [int(v) for v in dc["input_size"]], "mean": [float(v) for v in dc["mean"]],
            "std": [float(v) for v in dc["std"]], "interpolation": str(dc.get("interpolation", "bilinear")),
            "crop_pct": float(dc.get("crop_pct", 0.875))}


class _ViewEmbedder:
    """Adapter giving `geolocate.models.embed.iter_embeddings` the per-view embedding of any model."""

    def __init__(self, model: nn.Module) -> None:
        self.data_config = model.data_config
        self.forward_features = embedding_fn(model)


def embed_images(model: nn.Module, files: Sequence[Path], batch_size: int = 32, device: str | torch.device = "cpu",
                 crops: int = 0):
    """Embeddings of photos through `geolocate embed`'s code path (`models.embed.iter_embeddings`);
    with `crops` (1 or 3) each photo's test-time views averaged (`data.tta`).

    Returns:
        (float32 tensor [N, D] in the order of `files`, list of (index, reason) for files that
        could not be read; their rows are zeros).
    """
    from geolocate.models.embed import iter_embeddings

    from geolocate.console import progress
    from geolocate.data.tta import n_views

    model = model.to(device).eval()
    files = [Path(f) for f in files]
    results = {}
    # The first training of a project embeds every photo once: tens of seconds on a CPU, never in silence.
    with progress() as bar:
        what = f" as {n_views(crops)} test-time views each" if crops else ""
        task = bar.add_task(f"embedding {len(files)} photos{what}", total=len(files))
        for photo, result in iter_embeddings(_ViewEmbedder(model), files, batch_size, str(device), crops):
            results[str(photo)] = result
            bar.advance(task)
    vectors = [results[str(f)] for f in files]
    width = next((len(v) for v in vectors if not isinstance(v, str)), int(getattr(model, "view_dim", 0)))
    out = torch.zeros(len(files), width)
    failed = []
    for i, vector in enumerate(vectors):
        if isinstance(vector, str):
            failed.append((i, vector))
        else:
            out[i] = torch.as_tensor(vector)
    return out, failed


class FeatureCache:
    """Features of one backbone (one fingerprint) under `root/<model_name>/`.

    With `crops` (1 or 3) a photo's feature is the mean over its test-time views (`data.tta`): the
    crop count is part of the fingerprint, so these live in their own file (`<fingerprint>-tta<crops>`)
    beside the one-crop features of the same backbone, and neither replaces the other.
    """

    def __init__(self, root: Path, model_name: str, model: nn.Module, lock: Path | None = None, crops: int = 0) -> None:
        self.lock = lock  # the data directory's lock, held while the cache file is replaced
        self.crops = crops
        self.preprocessing = preprocessing_of(model) | ({"tta_crops": crops} if crops else {})
        self.fingerprint = fingerprint(model, self.preprocessing)
        self.stem = Path(root) / model_name / (self.fingerprint[:16] + (f"-tta{crops}" if crops else ""))
        self.model_name = model_name

    def load(self) -> tuple[list[str], torch.Tensor, list[str]]:
        """(image ids, features [N, D], ids that failed to decode); empty when nothing usable is cached."""
        from safetensors import safe_open

        empty = [], torch.zeros(0, 0), []
        path = self.stem.with_suffix(".safetensors")
        if not path.is_file():
            return empty
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                feats = handle.get_tensor("features")
            ids, failed = json.loads(meta["image_ids"]), json.loads(meta.get("failed", "[]"))
        except Exception:  # truncated, foreign or pre-metadata file: recompute rather than trust it
            return empty
        if meta.get("format") != FORMAT or meta.get("fingerprint") != self.fingerprint or len(ids) != feats.shape[0]:
            return empty
        return ids, feats, failed

    def features(self, model: nn.Module, files: dict[str, Path], batch_size: int, device="cpu") -> tuple[dict[str, int], torch.Tensor]:
        """Row of every requested image id in the returned tensor; computes and stores the missing ones.

        Photos that cannot be read are left out of the mapping (the caller treats them as missing views).
        """
        ids, feats, failed = self.load()
        known = set(ids) | set(failed)
        todo = sorted(i for i in files if i not in known)
        if todo:
            new, bad = embed_images(model, [files[i] for i in todo], batch_size, device, self.crops)
            bad_ids = {todo[i] for i, _ in bad}
            feats = new if not ids else torch.cat([feats, new])
            ids, failed = ids + todo, sorted(set(failed) | bad_ids)
            self._save(ids, feats, failed)
        skip = set(failed)
        return {i: row for row, i in enumerate(ids) if i in files and i not in skip}, feats

    def _save(self, ids: list[str], feats: torch.Tensor, failed: list[str]) -> None:
        """Tensor and its row ids in one file, published by one atomic rename."""
        from safetensors.torch import save_file

        meta = {"format": FORMAT, "model": self.model_name, "fingerprint": self.fingerprint,
                "preprocessing": json.dumps(self.preprocessing), "image_ids": json.dumps(ids), "failed": json.dumps(failed)}
        # The cache lives in the data directory: write it under the data lock, waiting a little
        # for a short command (cells, split) rather than failing a long training run.
        held = DataLock(self.lock, command="geolocate train (feature cache)", wait_s=_LOCK_WAIT_S) if self.lock else contextlib.nullcontext()
        with held, atomic.atomic_path(self.stem.with_suffix(".safetensors")) as tmp:
            save_file({"features": feats.contiguous()}, str(tmp), metadata=meta)
