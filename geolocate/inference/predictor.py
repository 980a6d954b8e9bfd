"""The torch path of `predict`, and `load_predictor`, which picks the path.

A checkpoint with an exported graph beside it (`<stem>.onnx`, same `weights_id`) is answered by
onnxruntime without importing torch (`onnx_predictor`); otherwise, or with `engine="torch"`,
by the torch model rebuilt from the checkpoint. Both share `PhotoPredictor`: decoding,
preprocessing, positions, radius and rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from geolocate.errors import UserError
from geolocate.inference.photo_predictor import PhotoPredictor

ENGINES = ("auto", "onnx", "torch")


class ExportedGraph(NamedTuple):
    """A graph exported from a checkpoint's weights, and the SHA-256 its own sidecar records for it (None: none)."""

    path: Path
    sha256: object


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
        """The torch predictor of any checkpoint reference (`resolve_checkpoint`'s forms)."""
        from geolocate.artifacts.resolve import resolve_checkpoint

        return cls.load_stem(resolve_checkpoint(ref, paths), device)

    @classmethod
    def load_stem(cls, stem: Path, device: str = "cpu") -> "Predictor":
        """The torch predictor of a resolved checkpoint stem."""
        from geolocate.artifacts.checkpoint import load_checkpoint
        from geolocate.inference.onnx_predictor import load_model_index

        model, meta = load_checkpoint(stem, device=device)
        return cls(model, meta, device, load_model_index(stem, meta), source=f"checkpoint {stem}")

    def predict_items(self, sources, top: int = 5, batch_size: int = 32, truths=None, names=None, workers: int = 4):
        import torch

        # Decode threads take the cores torch leaves free (at least one): on 2 cores, 4 decoders
        # would only steal time from the forward they are meant to feed.
        workers = min(workers, max(1, (os.cpu_count() or 1) - torch.get_num_threads()))
        if len(sources) == 1:  # one photo: extra threads only fight over a tiny forward
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return super().predict_items(sources, top, batch_size, truths, names, workers)
            finally:
                torch.set_num_threads(previous)
        return super().predict_items(sources, top, batch_size, truths, names, workers)

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
            if hasattr(self.model, "forward_with_features"):
                logits, features = self.model.forward_with_features(x)
                return logits.float().cpu().numpy(), features.float().cpu().numpy()
            return self.model(x).float().cpu().numpy(), None


def load_predictor(stem: Path, engine: str = "auto", device: str = "cpu", runs: Path | None = None) -> PhotoPredictor:
    """The predictor of a resolved checkpoint stem: ONNX when its weights have an exported graph (or `engine="onnx"`), else torch.

    `runs` (the project's runs directory) lets `models/best` use the graph `export-model` wrote
    beside the run checkpoint it was promoted from.

    Raises:
        UserError: an unknown engine, or `engine="onnx"` and the checkpoint has no graph (says how to export one).
    """
    from geolocate.artifacts.checkpoint import read_sidecar
    from geolocate.artifacts.integrity import verify_checkpoint

    if engine not in ENGINES:
        raise UserError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    verify_checkpoint(stem)  # links and a release's SHA256SUMS, before anything is parsed
    meta = read_sidecar(stem) if engine != "torch" else None
    graph = graph_of(stem, meta, runs) if meta is not None else None
    if graph is not None:
        from geolocate.inference.onnx_predictor import OnnxPredictor

        return OnnxPredictor.load(stem, meta, graph=graph.path, graph_sha256=graph.sha256)
    if engine == "onnx":
        raise UserError(f"checkpoint {stem} has no exported graph; write one with `geolocate export-model --run <run>` "
                        f"(or freeze the run), or use --engine torch")
    from geolocate.device import resolve_device  # torch only on this path

    return Predictor.load_stem(stem, device=str(resolve_device(device)))


def graph_of(stem: Path, meta: dict, runs: Path | None = None) -> ExportedGraph | None:
    """The ONNX graph exported from these very weights: beside the checkpoint, or beside the run
    checkpoint it was promoted from (`export-model` writes it there; `models/best` is a copy).

    Its digest is checked as it is read (`OnnxPredictor.load`), so the bytes checked are the bytes run.
    """
    from geolocate.artifacts.checkpoint import read_sidecar
    from geolocate.artifacts.resolve import GRAPH_SUFFIX, file_of
    from geolocate.paths import slug

    if has_graph(stem, meta):
        return ExportedGraph(file_of(stem, GRAPH_SUFFIX), _graph_record(meta).get("sha256"))
    run_id = meta.get("run_id")
    if runs is None or not isinstance(run_id, str) or not run_id or slug(run_id) != run_id:
        return None  # an id that is not a plain name never becomes a path
    twin = Path(runs) / run_id / "best"
    if not file_of(twin, GRAPH_SUFFIX).is_file() or not file_of(twin, ".json").is_file():
        return None
    twin_meta = read_sidecar(twin)
    same = twin_meta.get("weights_id") == meta.get("weights_id")
    if not (same and has_graph(twin, twin_meta)):
        return None
    # The promoted copy is what the user chose to trust: the digest its own sidecar records for these
    # weights wins over the twin's (which a run folder may have rewritten; the loader checks the bytes).
    vouched, own = _graph_record(meta).get("sha256"), _graph_record(twin_meta).get("sha256")
    if vouched is not None and own is not None and vouched != own:
        return None  # exported again since the promotion: not the graph this copy was promoted with
    return ExportedGraph(file_of(twin, GRAPH_SUFFIX), vouched if vouched is not None else own)


def _graph_record(meta: dict) -> dict:
    """The sidecar's `onnx` record when it was exported from these very weights, else {}."""
    graph, weights_id = meta.get("onnx") or {}, meta.get("weights_id")
    return graph if weights_id is not None and graph.get("weights_id") == weights_id else {}


def has_graph(stem: Path, meta: dict) -> bool:
    """True when `<stem>.onnx` exists and was exported from these very weights."""
    from geolocate.artifacts.resolve import file_of

    return bool(_graph_record(meta)) and file_of(stem, ".onnx").is_file()
