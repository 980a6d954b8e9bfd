"""What every single-view predictor shares, without torch: decode, preprocess, rows.

A predictor subclass only runs the network (`_forward`: a float32 batch [B, 3, H, W] in,
logits and embeddings out); everything else is here: decoding in a thread pool (Pillow releases
the GIL), test-time views when evaluation chose them (sidecar `tta`: a photo's views are rows of
the batch, averaged after the pass), the sidecar's temperature and position mode, retrieval
refinement, the credible radius and the table rows. The torch path (`predictor.Predictor`) and the
ONNX path (`onnx_predictor.OnnxPredictor`) therefore give the same answers for the same logits.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from geolocate.artifacts.sidecar_schema import check_prediction_sidecar
from geolocate.data.images import BadImage
from geolocate.data.tta import average_views, flatten_views, n_views
from geolocate.evaluate.conformal import radius_for
from geolocate.evaluate.metrics import softmax
from geolocate.evaluate.position import predicted_positions
from geolocate.geo import haversine_km
from geolocate.inference.geojson import cell_polygon
from geolocate.inference.graph_check import check_outputs
from geolocate.inference.preprocess import Preprocess
from geolocate.inference.provenance import describe_model
from geolocate.inference.result import Failure
from geolocate.inference.sources import Source, decode, source_name


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
        self.crops = checked.tta.crops_run if checked.tta is not None else 0  # 0: one centre crop, no views
        self.views = n_views(self.crops) if self.crops else 1
        self.radius = meta.get("radius")
        self.refine = checked.retrieval  # validated: predict reads its setting
        self.index = index if self.refine is not None and self.refine.enabled else None

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    four_view = False  # one photo per prediction

    def describe(self) -> dict:
        """Which model answers (provenance, JSON-ready)."""
        return describe_model(self.meta, self.engine)

    def predict_files(self, files: Iterable[Path], top: int = 5, batch_size: int = 32, truth: dict | None = None,
                      workers: int = 4) -> tuple[list[dict], list[Failure]]:
        """Predict every file (truth: {str(file): (lat, lon)}); bad files become `Failure`s, the others are still predicted."""
        files = list(files)
        truths = [(truth or {}).get(str(f)) for f in files]
        return self.predict_items(files, top, batch_size, truths, workers=workers)

    def predict_items(self, sources: Sequence[Source], top: int = 5, batch_size: int = 32,
                      truths: Sequence | None = None, names: Sequence[str] | None = None,
                      workers: int = 4) -> tuple[list[dict], list[Failure]]:
        """Rows for photos given as paths, bytes, PIL images or arrays; `truths[i]` is (lat, lon) or None (then EXIF GPS)."""
        names = list(names) if names is not None else [source_name(s, i) for i, s in enumerate(sources)]
        items = list(zip(names, sources, truths if truths is not None else [None] * len(sources)))
        rows, failures = [], []
        for batch in _batches(self._decoded(items, workers if len(items) > 1 else 0), batch_size):
            good = [item for item in batch if not isinstance(item, Failure)]
            failures += [item for item in batch if isinstance(item, Failure)]
            if good:
                logits, embeddings = self._network([arr for _, arr, _ in good])
                rows += self._rows([(name, true) for name, _, true in good], logits, embeddings, top)
        return rows, failures

    def _decode(self, item: tuple[str, Source, tuple | None]):
        name, source, truth = item
        try:
            photo = decode(source, self.preprocess.resize)
        except BadImage as exc:
            return Failure(name, str(exc))
        return name, self.preprocess.pixels(photo.image, self.crops), truth or photo.gps  # [3, S, S], with TTA [V, 3, S, S]

    def _network(self, pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and embeddings of decoded photos, one row per photo, from one forward pass.

        With TTA every photo's views are rows of that pass (B × V), averaged back to one row per
        photo before the temperature, the position and retrieval, as evaluation averaged them.
        """
        batch = np.stack(pixels)
        if self.views > 1:
            batch = flatten_views(batch)
        logits, embeddings = check_outputs(*self._forward(batch), len(batch), len(self.classes), self.index)
        if self.views == 1:
            return logits, embeddings
        return average_views(logits, self.views), None if embeddings is None else average_views(embeddings, self.views)

    def _decoded(self, items: list, workers: int) -> Iterator:
        if workers <= 0:  # one photo: a pool would only cost its start-up
            yield from map(self._decode, items)
            return
        # A bounded window of futures: decoding runs ahead of the network, memory stays flat.
        window = workers * 8
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque = deque()
            for item in items:
                pending.append(pool.submit(self._decode, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def positions(self, probs: np.ndarray, embeddings: np.ndarray | None) -> tuple[np.ndarray, str]:
        """[N, 2] predicted (lat, lon) and how they were placed (retrieval when the model chose it on val)."""
        if self.index is not None and embeddings is not None:
            from geolocate.evaluate.retrieval import placed_or, refine_positions

            # a record from before `method` existed was made by the cluster method (the record's default)
            refined = refine_positions(probs, embeddings, self.index, self.refine.top_cells, self.refine.neighbours,
                                       self.refine.method)
        lat, lon = predicted_positions(probs, self.centroids, self.position, self.weighted_topk)
        if self.index is not None and embeddings is not None:  # a row the index cannot place keeps the classifier's
            return placed_or(refined, np.stack([lat, lon], axis=1)), "retrieval"
        return np.stack([lat, lon], axis=1), self.position

    def _rows(self, items: list[tuple[str, tuple | None]], logits: np.ndarray, embeddings, top: int) -> list[dict]:
        probs = softmax(logits, self.temperature)
        pos, how = self.positions(probs, embeddings)
        radius = radius_for(probs.max(axis=1), self.radius) if self.radius else [None] * len(items)
        return [prediction_row(name, probs[i], pos[i], how, radius[i], self.classes, top, true)
                for i, (name, true) in enumerate(items)]


def prediction_row(name: str, probs: np.ndarray, pos, how: str, radius, classes: list[dict], top: int,
                   truth: tuple[float, float] | None) -> dict:
    """One prediction in `Result`'s fields: position, confidence, radius, top-k classes, truth and error.

    `classes[k]` has cell_id, city and centroid_lat/lon; both systems build their rows here.
    """
    order = np.argsort(-probs, kind="stable")[:top]
    lat, lon = float(pos[0]), float(pos[1])
    return {
        "file": name, "lat": lat, "lon": lon, "position": how, "confidence": float(probs.max()),
        "radius_km": None if radius is None else float(radius),
        "top": [_class_entry(rank + 1, classes[int(k)], float(probs[k])) for rank, k in enumerate(order)],
        "true_lat": truth[0] if truth else None, "true_lon": truth[1] if truth else None,
        "error_km": float(haversine_km(lat, lon, *truth)) if truth else None,
    }


def _class_entry(rank: int, c: dict, prob: float) -> dict:
    return {"rank": rank, "cell_id": c["cell_id"], "city": c.get("city"), "lat": c["centroid_lat"],
            "lon": c["centroid_lon"], "prob": prob, "polygon": cell_polygon(c["cell_id"])}


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
