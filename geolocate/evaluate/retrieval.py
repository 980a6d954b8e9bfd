"""Retrieval refinement: place a photo near the train photos it looks most like.

The classifier says which cells; the index (train photos' L2-normalised embeddings, float16,
with their positions and cells) says where inside them. Among the train photos of the top-k
cells, the `neighbours` most similar ones vote: each cell's mass is the sum of its neighbours'
similarities times the cell's probability, and the photo goes to the similarity-weighted
spherical mean of the neighbours of the heaviest cell. Taking one cluster rather than the mean
of all neighbours keeps a photo from landing halfway between two far-apart candidates, and a
strong visual match in the second cell can overrule a wrong top-1 (the tail).

Plain numpy: a brute-force product over a train set of ~10⁵ photos × 512 floats is a few
milliseconds per photo, so no ANN library (faiss, usearch) is needed at this size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geolocate.evaluate.metrics import topk_indices
from geolocate.geo import spherical_mean

_CHUNK = 256


@dataclass
class RetrievalIndex:
    """Train photos' embeddings [N, D] (unit rows, float16), positions [N, 2] and cell labels [N]."""

    embeddings: np.ndarray
    latlon: np.ndarray
    labels: np.ndarray


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def build_index(embeddings: np.ndarray, latlon: np.ndarray, labels: np.ndarray) -> RetrievalIndex:
    """An index from raw embeddings (normalised and stored as float16)."""
    return RetrievalIndex(normalise(embeddings).astype(np.float16), np.asarray(latlon, dtype=np.float64),
                          np.asarray(labels, dtype=np.int64))


def refine_positions(probs: np.ndarray, embeddings: np.ndarray, index: RetrievalIndex, top_cells: int = 5,
                     neighbours: int = 10) -> np.ndarray:
    """[N, 2] refined (lat, lon) for each row of `probs` [N, C] and its embedding [N, D]."""
    return refine_grid(probs, embeddings, index, [(top_cells, neighbours)])[(top_cells, neighbours)]


def refine_grid(probs: np.ndarray, embeddings: np.ndarray, index: RetrievalIndex,
                settings: list[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
    """Refined positions for several (top_cells, neighbours) settings, computing the similarities once."""
    out = {setting: np.empty((len(probs), 2)) for setting in settings}
    keys = index.embeddings.astype(np.float32)
    members = {int(c): np.flatnonzero(index.labels == c) for c in np.unique(index.labels)}
    widest = max(k for k, _ in settings)
    for start in range(0, len(probs), _CHUNK):
        rows = slice(start, start + _CHUNK)
        sims = normalise(embeddings[rows]) @ keys.T
        top = topk_indices(probs[rows], widest)
        for i, (p, s, cells) in enumerate(zip(probs[rows], sims, top)):
            for k, n in settings:
                out[(k, n)][start + i] = _refine_one(p, s, index, members, cells[:k], n)
    return out


def _refine_one(probs: np.ndarray, sims: np.ndarray, index: RetrievalIndex, members: dict, cells: np.ndarray,
                neighbours: int) -> np.ndarray:
    parts = [members[int(c)] for c in cells if int(c) in members]
    if not parts:  # no train photo in those cells (cannot happen for a model's own index)
        return np.full(2, np.nan)
    candidates = np.concatenate(parts)
    near = candidates[np.argsort(-sims[candidates], kind="stable")[:neighbours]]
    weight = np.maximum(sims[near], 0.0) + 1e-6
    labels = index.labels[near]
    mass = {int(c): float(weight[labels == c].sum() * probs[c]) for c in np.unique(labels)}
    best = labels == max(mass, key=mass.get)
    return np.array(spherical_mean(index.latlon[near[best], 0], index.latlon[near[best], 1], weight[best]))


# ---------------------------------------------------------------- on disk, beside the checkpoint


def save_index(path, index: RetrievalIndex, weights_id: str | None) -> None:
    """Write the index as safetensors (numpy, no torch, nothing pickled), tagged with its model's weights id."""
    from safetensors.numpy import save_file

    from geolocate.atomic import atomic_path

    arrays = {"embeddings": index.embeddings, "latlon": index.latlon, "labels": index.labels}
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata={"weights_id": str(weights_id or "")})


def load_index(path, weights_id: str | None) -> RetrievalIndex:
    """Read an index written by `save_index`; refuses one built for other weights.

    Raises:
        UserError: missing, unreadable, or built for another checkpoint.
    """
    from safetensors import SafetensorError, safe_open

    from geolocate.errors import UserError

    try:
        with safe_open(str(path), framework="numpy") as handle:
            found = (handle.metadata() or {}).get("weights_id")
            arrays = {key: handle.get_tensor(key) for key in ("embeddings", "latlon", "labels")}
    except (SafetensorError, OSError, KeyError) as exc:
        raise UserError(f"retrieval index {path} is missing or unreadable ({exc}); evaluate the run again") from None
    if weights_id and found != weights_id:
        raise UserError(f"retrieval index {path} was built for other weights; evaluate the run again")
    return RetrievalIndex(**arrays)
