"""The torch path of `predict`, and `load_predictor`, which picks the path.

A checkpoint with an exported graph beside it (`<stem>.onnx`, same `weights_id`) is answered by
onnxruntime without importing torch (`onnx_predictor`); otherwise, or with `engine="torch"`,
by the torch model rebuilt from the checkpoint. Both share `PhotoPredictor`: decoding,
preprocessing, positions, radius and rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from geolocate.errors import UserError
from geolocate.inference.photo_predictor import Failure, PhotoPredictor  # noqa: F401 - Failure re-exported

ENGINES = ("auto", "onnx", "torch")


class Predictor(PhotoPredictor):
    """A `PhotoPredictor` running the torch model (CPU: channels_last, threads sized to the batch)."""

    engine = "torch"

    def __init__(self, model, meta: dict, device: str = "cpu", index=None, source: object = "checkpoint sidecar") -> None:
        import torch

        super().__init__(meta, index, source)
        self.device = torch.device(device)
        # channels_last is what oneDNN's convolutions want on the CPU too (and what CUDA's do).
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()

    @classmethod
    def load(cls, ref: str | Path, paths=None, device: str = "cpu") -> "Predictor":
        from geolocate.artifacts.checkpoint import load_checkpoint
        from geolocate.artifacts.resolve import resolve_checkpoint
        from geolocate.inference.onnx_predictor import load_model_index

        model, meta = load_checkpoint(ref, paths, device=device)
        return cls(model, meta, device, load_model_index(resolve_checkpoint(ref, paths), meta), source=f"checkpoint {ref}")

    def predict_files(self, files, top: int = 5, batch_size: int = 32, truth: dict | None = None, workers: int = 4):
        import torch

        files = list(files)
        # Decode threads take the cores torch leaves free (at least one): on 2 cores, 4 decoders
        # would only steal time from the forward they are meant to feed.
        workers = min(workers, max(1, (os.cpu_count() or 1) - torch.get_num_threads()))
        if len(files) == 1:  # one photo: extra threads only fight over a tiny forward
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return super().predict_files(files, top, batch_size, truth, workers)
            finally:
                torch.set_num_threads(previous)
        return super().predict_files(files, top, batch_size, truth, workers)

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
            if hasattr(self.model, "forward_with_features"):
                logits, features = self.model.forward_with_features(x)
                return logits.float().cpu().numpy(), features.float().cpu().numpy()
            return self.model(x).float().cpu().numpy(), None


def load_predictor(ref: str | Path, paths=None, engine: str = "auto", device: str = "cpu") -> PhotoPredictor:
    """The predictor for `ref`: ONNX when the checkpoint has a matching graph (or `engine="onnx"`), else torch.

    Raises:
        UserError: `engine="onnx"` and the checkpoint has no graph (says how to export one).
    """
    from geolocate.artifacts.checkpoint import read_sidecar
    from geolocate.artifacts.integrity import verify_checkpoint
    from geolocate.artifacts.resolve import resolve_checkpoint

    if engine not in ENGINES:
        raise UserError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    verify_checkpoint(resolve_checkpoint(ref, paths))  # links and a release's SHA256SUMS, before anything is parsed
    if engine == "torch":
        return _torch_predictor(ref, paths, device)
    stem = resolve_checkpoint(ref, paths)
    meta = read_sidecar(stem, paths)
    if has_graph(stem, meta):
        from geolocate.inference.onnx_predictor import OnnxPredictor

        return OnnxPredictor.load(stem, meta)
    if engine == "onnx":
        raise UserError(f"checkpoint {stem} has no exported graph; write one with `geolocate export-model --run <run>` "
                        f"(or freeze the run), or use --engine torch")
    return _torch_predictor(stem, paths, device)


def _torch_predictor(ref, paths, device: str) -> "Predictor":
    from geolocate.train.distributed import resolve_device  # torch only on this path

    return Predictor.load(ref, paths, device=str(resolve_device(device)))


def has_graph(stem: Path, meta: dict) -> bool:
    """True when `<stem>.onnx` exists and was exported from these very weights."""
    from geolocate.artifacts.resolve import file_of

    graph = meta.get("onnx") or {}
    weights_id = meta.get("weights_id")
    return weights_id is not None and graph.get("weights_id") == weights_id and file_of(stem, ".onnx").is_file()
