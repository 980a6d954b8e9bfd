"""What every single-view predictor shares, without torch: decode, preprocess, rows.

A predictor subclass only runs the network (`_forward`: a float32 batch [B, 3, H, W] in,
logits and embeddings out); everything else is here: decoding in a thread pool (Pillow releases
the GIL), the sidecar's temperature and position mode, retrieval refinement, the credible
radius and the table rows. The torch path (`predictor.Predictor`) and the ONNX path
(`onnx_predictor.OnnxPredictor`) therefore give the same answers for the same logits.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from geolocate.artifacts.sidecar_schema import check_prediction_sidecar
from geolocate.data.images import BadImage, load_rgb
from geolocate.evaluate.conformal import radius_for
from geolocate.evaluate.metrics import softmax
from geolocate.evaluate.position import predicted_positions
from geolocate.geo import haversine_km
from geolocate.acquire.exif import exif_latlon
from geolocate.inference.graph_check import check_outputs, placed_or
from geolocate.inference.preprocess import Preprocess


@dataclass
class Failure:
    """A file that could not be predicted, with a one-line reason."""

    file: str
    reason: str


class PhotoPredictor:
    """Top-k cells, a position, a confidence and a credible radius for photos."""

    engine = "none"

    def __init__(self, meta: dict, index=None, source: object = "checkpoint sidecar") -> None:
        checked = check_prediction_sidecar(meta, source)  # a sidecar may have been edited: trust none of it
        self.meta = meta
        self.classes = [c.model_dump() for c in checked.classes]
        self.centroids = np.array([[c["centroid_lat"], c["centroid_lon"]] for c in self.classes], dtype=np.float64)
        self.temperature = float(checked.temperature)
        self.position = checked.position
        self.weighted_topk = checked.weighted_topk
        self.preprocess = Preprocess(checked.preprocessing.model_dump())
        self.radius = meta.get("radius")
        refine = meta.get("retrieval") or {}
        self.index = index if refine.get("enabled") else None
        self.refine = refine

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def predict_files(self, files: Iterable[Path], top: int = 5, batch_size: int = 32, truth: dict | None = None,
                      workers: int = 4) -> tuple[list[dict], list[Failure]]:
        """Predict every file; bad files become `Failure`s and the others are still predicted."""
        files = list(files)
        rows, failures = [], []
        for batch in _batches(self._decoded(files, workers if len(files) > 1 else 0), batch_size):
            good = [(f, arr) for f, arr in batch if not isinstance(arr, Failure)]
            failures += [arr for _, arr in batch if isinstance(arr, Failure)]
            if good:
                logits, embeddings = check_outputs(*self._forward(np.stack([arr for _, arr in good])), len(good), len(self.classes), self.index)
                rows += self._rows([f for f, _ in good], logits, embeddings, top, truth)
        return rows, failures

    def _decode(self, f: Path):
        try:
            return f, self.preprocess(load_rgb(f, self.preprocess.resize, margin=1.0))
        except BadImage as exc:
            return f, Failure(str(f), str(exc))

    def _decoded(self, files: list[Path], workers: int) -> Iterator[tuple[Path, object]]:
        if workers <= 0:  # one photo: a pool would only cost its start-up
            yield from map(self._decode, files)
            return
        # A bounded window of futures: decoding runs ahead of the network, memory stays flat.
        window = workers * 8
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque = deque()
            for f in files:
                pending.append(pool.submit(self._decode, f))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def positions(self, probs: np.ndarray, embeddings: np.ndarray | None) -> tuple[np.ndarray, str]:
        """[N, 2] predicted (lat, lon) and how they were placed (retrieval when the model chose it on val)."""
        if self.index is not None and embeddings is not None:
            from geolocate.evaluate.retrieval import refine_positions

            refined = refine_positions(probs, embeddings, self.index, self.refine["top_cells"], self.refine["neighbours"])
        lat, lon = predicted_positions(probs, self.centroids, self.position, self.weighted_topk)
        if self.index is not None and embeddings is not None:  # a row the index cannot place keeps the classifier's
            return placed_or(refined, np.stack([lat, lon], axis=1)), "retrieval"
        return np.stack([lat, lon], axis=1), self.position

    def position_of(self, probs: np.ndarray) -> tuple[float, float]:
        """The (lat, lon) of one probability row by the sidecar's position mode (no retrieval)."""
        lat, lon = predicted_positions(probs[None, :], self.centroids, self.position, self.weighted_topk)
        return float(lat[0]), float(lon[0])

    def _rows(self, files: list[Path], logits: np.ndarray, embeddings, top: int, truth: dict | None) -> list[dict]:
        probs = softmax(logits, self.temperature)
        pos, how = self.positions(probs, embeddings)
        conf = probs.max(axis=1)
        radius = radius_for(conf, self.radius) if self.radius else [None] * len(files)
        return [self._row(f, p, pos[i], how, radius[i], top, truth) for i, (f, p) in enumerate(zip(files, probs))]

    def _row(self, file: Path, probs: np.ndarray, pos, how: str, radius, top: int, truth: dict | None) -> dict:
        order = np.argsort(-probs, kind="stable")[:top]
        lat, lon = float(pos[0]), float(pos[1])
        row = {
            "file": str(file), "lat": lat, "lon": lon, "position": how,
            "confidence": float(probs[order[0]]),
            "radius_km": None if radius is None else float(radius),
            "top": [self._class_entry(rank + 1, int(k), float(probs[k])) for rank, k in enumerate(order)],
        }
        true = (truth or {}).get(str(file)) or exif_latlon(file)
        row["true_lat"], row["true_lon"] = true if true else (None, None)
        row["error_km"] = float(haversine_km(lat, lon, *true)) if true else None
        return row

    def _class_entry(self, rank: int, k: int, prob: float) -> dict:
        c = self.classes[k]
        return {"rank": rank, "cell_id": c["cell_id"], "city": c.get("city"), "lat": c["centroid_lat"],
                "lon": c["centroid_lon"], "prob": prob}


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
