"""The ONNX path of `predict`: onnxruntime runs the exported graph; torch is never imported.

The graph (`<stem>.onnx`, written by `freeze` or `geolocate export-model`) outputs the logits and
the embedding; preprocessing is `Preprocess` (PIL + numpy), so a cold `predict` skips torch,
torchvision and timm altogether (about 3 s of imports on a small CPU).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from geolocate.artifacts.integrity import read_companion, verify_companion
from geolocate.artifacts.resolve import file_of
from geolocate.artifacts.sidecar_schema import check_prediction_sidecar
from geolocate.errors import UserError
from geolocate.inference.graph_check import check_graph, check_index, run_with_deadline
from geolocate.inference.photo_predictor import PhotoPredictor


class OnnxPredictor(PhotoPredictor):
    """A `PhotoPredictor` whose network is an onnxruntime session."""

    engine = "onnx"

    def __init__(self, session, meta: dict, index=None, source: object = "checkpoint sidecar") -> None:
        super().__init__(meta, index, source)
        self.session = session
        self.outputs = [o.name for o in session.get_outputs()]

    @classmethod
    def load(cls, stem: Path, meta: dict, threads: int | None = None, graph: Path | None = None,
             graph_sha256: object = None) -> "OnnxPredictor":
        """The session of `graph` (default `<stem>.onnx`) for the checkpoint `stem` whose sidecar is `meta`.

        The graph is read once: its digest check (against `graph_sha256`, the digest `graph_of` chose
        for a twin graph, else `meta`'s `onnx.sha256`), the session and the control-flow check all
        see those bytes.
        """
        source = f"checkpoint {stem}"
        check_prediction_sidecar(meta, source)  # before any session opens: a refused sidecar leaves no session's threads behind
        graph = graph or file_of(stem, ".onnx")
        recorded = graph_sha256 if graph_sha256 is not None else (meta.get("onnx") or {}).get("sha256")
        graph_bytes = read_companion(graph, recorded, "graph")
        session = _open_session(graph, graph_bytes, threads)
        check_graph(session, meta, graph, graph_bytes)
        return cls(session, meta, load_model_index(stem, meta), source=source)

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = dict(zip(self.outputs, run_with_deadline(self.session, {"image": np.ascontiguousarray(batch, dtype=np.float32)})))
        return out["logits"], out.get("embedding")


def _open_session(graph: Path, graph_bytes: bytes, threads: int | None):
    """An onnxruntime session of `graph_bytes` (`graph` names them in the error)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    options.log_severity_level = 3  # errors only: its warnings are not the user's business
    try:
        return ort.InferenceSession(graph_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise UserError(f"{graph} is not a usable ONNX graph ({type(exc).__name__}); export it again with `geolocate export-model`") from None


def load_model_index(stem: Path, meta: dict):
    """The retrieval index beside a checkpoint when its sidecar turned refinement on, else None.

    Raises:
        UserError: a malformed retrieval record (checked before the index is opened), or an index
            that is missing, swapped or built for other weights.
    """
    from geolocate.artifacts.sidecar_schema import check_retrieval_record

    record = check_retrieval_record(meta, f"checkpoint {stem}")
    if record is None or not record.enabled:
        return None
    from geolocate.artifacts.resolve import INDEX_SUFFIX
    from geolocate.evaluate.retrieval import load_index

    verify_companion(file_of(stem, INDEX_SUFFIX), record.index_sha256, "retrieval index")
    index = load_index(file_of(stem, INDEX_SUFFIX), meta.get("weights_id"))
    check_index(index, meta)
    return index
