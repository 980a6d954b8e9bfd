"""A Predictor loaded from a checkpoint, a run, a release or the global best.

Everything it needs (model name and kwargs, classes with centroids, preprocessing, the fitted
temperature and position mode) comes from the checkpoint's sidecar: no data directory, no config.
Batch prediction decodes photos in a thread pool (Pillow releases the GIL while decoding) and
runs the network on whole batches, which is where its speed over a one-by-one loop comes from.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from geolocate.artifacts.sidecar_schema import check_prediction_sidecar
from geolocate.data.images import BadImage, load_rgb
from geolocate.data.transforms import eval_transform
from geolocate.evaluate.metrics import softmax
from geolocate.evaluate.position import predicted_positions
from geolocate.geo import haversine_km
from geolocate.inference.exif import exif_latlon


@dataclass
class Failure:
    """A file that could not be predicted, with a one-line reason."""

    file: str
    reason: str


class Predictor:
    """Top-k cells, a position and a confidence for photos."""

    def __init__(self, model: torch.nn.Module, meta: dict, device: str | torch.device = "cpu", source: object = "checkpoint sidecar") -> None:
        checked = check_prediction_sidecar(meta, source)  # before anything is built from it
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.meta = meta
        self.classes = [c.model_dump() for c in checked.classes]
        self.centroids = np.array([[c["centroid_lat"], c["centroid_lon"]] for c in self.classes], dtype=np.float64)
        self.temperature = float(checked.temperature)
        self.position = checked.position
        self.weighted_topk = checked.weighted_topk
        self.transform = eval_transform(checked.preprocessing.model_dump())
        self.side = checked.preprocessing.input_size[-1]

    @classmethod
    def load(cls, ref: str | Path, paths=None, device: str = "cpu") -> "Predictor":
        from geolocate.artifacts.checkpoint import load_checkpoint

        model, meta = load_checkpoint(ref, paths, device=device)
        return cls(model, meta, device, source=f"checkpoint {ref}")

    def predict_files(self, files: Iterable[Path], top: int = 5, batch_size: int = 32, truth: dict | None = None,
                      workers: int = 4) -> tuple[list[dict], list[Failure]]:
        """Predict every file; bad files become `Failure`s and the others are still predicted."""
        rows, failures = [], []
        for batch in _batches(self._decoded(list(files), workers), batch_size):
            good = [(f, img) for f, img in batch if not isinstance(img, Failure)]
            failures += [img for _, img in batch if isinstance(img, Failure)]
            if good:
                probs = self._probabilities([img for _, img in good])
                rows += [self._row(f, p, top, truth) for (f, _), p in zip(good, probs)]
        return rows, failures

    def _decoded(self, files: list[Path], workers: int) -> Iterator[tuple[Path, object]]:
        def decode(f: Path):
            try:
                return f, self.transform(load_rgb(f, self.side))
            except BadImage as exc:
                return f, Failure(str(f), str(exc))

        # A bounded window of futures: decoding runs ahead of the network, memory stays flat.
        window = max(1, workers) * 8
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            pending: deque = deque()
            for f in files:
                pending.append(pool.submit(decode, f))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    @torch.inference_mode()
    def _probabilities(self, tensors: list[torch.Tensor]) -> np.ndarray:
        batch = torch.stack(tensors).to(self.device)
        logits = self.model(batch).float().cpu().numpy()
        return softmax(logits, self.temperature)

    def position_of(self, probs: np.ndarray) -> tuple[float, float]:
        """The predicted (lat, lon): top-1 centroid, or the probability-weighted top-k."""
        lat, lon = predicted_positions(probs[None, :], self.centroids, self.position, self.weighted_topk)
        return float(lat[0]), float(lon[0])

    def _row(self, file: Path, probs: np.ndarray, top: int, truth: dict | None) -> dict:
        order = np.argsort(-probs)[:top]
        lat, lon = self.position_of(probs)
        row = {
            "file": str(file),
            "lat": lat,
            "lon": lon,
            "confidence": float(probs[order[0]]),
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
