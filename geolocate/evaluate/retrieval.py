"""Retrieval refinement: place a photo near the train photos it looks most like.

The classifier says which cells; the index (train photos' L2-normalised embeddings, float16,
with their positions and cells) says where inside them. Among the train photos of the top-k
cells, the `neighbours` most similar ones vote: each cell's mass is the sum of its neighbours'
similarities times the cell's probability, and the photo goes to the similarity-weighted
spherical mean of the neighbours of the heaviest cell (`cluster`). Taking one cluster rather than
the mean of all neighbours keeps a photo from landing halfway between two far-apart candidates,
and a strong visual match in the second cell can overrule a wrong top-1 (the tail). The `median`
method keeps every neighbour instead, each weighted by its similarity times its cell's
probability, and places the photo at their spherical geometric median: the point of least
expected distance to them, which stays with the heavier group rather than between groups. The
`medoid` method ignores the probabilities and places the photo on the neighbour closest to the
others, as the k-NN baseline does (`baselines.knn`): searched over every cell with 5 neighbours
(the one setting `evaluate.refine` scores it in) it *is* that baseline on the model's embeddings
(as the index holds them, float16), so val can always fall back on it.

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


METHODS = ("cluster", "median", "medoid")  # how the neighbours place a photo (see above)


def refine_positions(probs: np.ndarray, embeddings: np.ndarray, index: RetrievalIndex, top_cells: int = 5,
                     neighbours: int = 10, method: str = "cluster") -> np.ndarray:
    """[N, 2] refined (lat, lon) for each row of `probs` [N, C] and its embedding [N, D]."""
    setting = (top_cells, neighbours, method)
    return refine_grid(probs, embeddings, index, [setting])[setting]


def refine_grid(probs: np.ndarray, embeddings: np.ndarray, index: RetrievalIndex,
                settings: list[tuple[int, int, str]]) -> dict[tuple[int, int, str], np.ndarray]:
    """Refined positions for several (top_cells, neighbours, method) settings, computing the similarities once."""
    unknown = sorted({method for _, _, method in settings} - set(METHODS))
    if unknown:
        raise ValueError(f"retrieval methods are {', '.join(METHODS)}, not {', '.join(map(repr, unknown))}")
    out = {setting: np.empty((len(probs), 2)) for setting in settings}
    keys = index.embeddings.astype(np.float32)
    members = {int(c): np.flatnonzero(index.labels == c) for c in np.unique(index.labels)}
    widest, most = max(k for k, _, _ in settings), max(n for _, n, _ in settings)
    for start in range(0, len(probs), _CHUNK):
        rows = slice(start, start + _CHUNK)
        sims = normalise(embeddings[rows]) @ keys.T
        top = topk_indices(probs[rows], widest)
        for k in sorted({k for k, _, _ in settings}):
            # each photo's candidates ranked once per number of cells; every neighbour count and method reads them
            ranked = [_ranked(s, members, cells[:k], most) for s, cells in zip(sims, top)]
            for _, n, method in (setting for setting in settings if setting[0] == k):
                out[(k, n, method)][rows] = _PLACERS[method](probs[rows], sims, index, [r[:n] for r in ranked])
    return out


def placed_or(positions: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """`positions` [N, 2], with each row that is not a finite position replaced by `fallback`'s row
    (retrieval cannot place a photo whose top cells have no indexed photo: it gives NaN)."""
    bad = ~np.isfinite(positions).all(axis=1)
    return np.where(bad[:, None], fallback, positions) if bad.any() else positions


def _ranked(sims: np.ndarray, members: dict, cells: np.ndarray, limit: int) -> np.ndarray:
    """The `limit` train photos of `cells` most similar to one photo, most similar first (empty:
    none in those cells). Searching every cell ranks the whole index: only the best `limit` are sorted."""
    parts = [members[int(c)] for c in cells if int(c) in members]
    if not parts:  # no train photo in those cells (cannot happen for a model's own index)
        return np.zeros(0, dtype=np.int64)
    candidates = np.concatenate(parts)
    if len(candidates) > limit:
        candidates = candidates[np.argpartition(-sims[candidates], limit - 1)[:limit]]
    return candidates[np.argsort(-sims[candidates], kind="stable")]


def _cluster(probs: np.ndarray, sims: np.ndarray, index: RetrievalIndex, near: list[np.ndarray]) -> np.ndarray:
    """[N, 2] the similarity-weighted mean of each photo's neighbours in its heaviest cell."""
    out = np.full((len(near), 2), np.nan)
    for i, rows in enumerate(near):
        if not len(rows):
            continue
        weight = np.maximum(sims[i, rows], 0.0) + 1e-6
        labels = index.labels[rows]
        mass = {int(c): float(weight[labels == c].sum() * probs[i, c]) for c in np.unique(labels)}
        best = labels == max(mass, key=mass.get)
        out[i] = spherical_mean(index.latlon[rows[best], 0], index.latlon[rows[best], 1], weight[best])
    return out


def _median(probs: np.ndarray, sims: np.ndarray, index: RetrievalIndex, near: list[np.ndarray]) -> np.ndarray:
    """[N, 2] the geometric median of each photo's neighbours, weighted by similarity × their cell's probability."""
    from geolocate.evaluate.position import geometric_median_latlon

    width = max((len(rows) for rows in near), default=0)
    out = np.full((len(near), 2), np.nan)
    if not width:
        return out
    latlon, weight = np.zeros((len(near), width, 2)), np.zeros((len(near), width))
    for i, rows in enumerate(near):  # padded with weightless copies of the first neighbour
        if len(rows):
            latlon[i] = index.latlon[np.resize(rows, width)]
            weight[i, :len(rows)] = (np.maximum(sims[i, rows], 0.0) + 1e-6) * (probs[i, index.labels[rows]] + 1e-12)
    placed = np.array([len(rows) > 0 for rows in near])
    out[placed] = geometric_median_latlon(latlon[placed], weight[placed])
    return out


def _medoid(probs: np.ndarray, sims: np.ndarray, index: RetrievalIndex, near: list[np.ndarray]) -> np.ndarray:
    """[N, 2] each photo's neighbour with the least summed distance to the others (the k-NN baseline's placement)."""
    from geolocate.evaluate.baselines import medoid

    out = np.full((len(near), 2), np.nan)
    for i, rows in enumerate(near):
        if len(rows):
            out[i] = medoid(index.latlon[rows])
    return out


_PLACERS = {"cluster": _cluster, "median": _median, "medoid": _medoid}


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
