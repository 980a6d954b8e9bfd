"""A release's graph and index are checked against the sidecar before first use, and their answers after.

A graph or an index is a file anyone can swap. Before predict uses one:
- the ONNX graph must have the signature `export-model` writes: one input `image`, float32
  [N, 3, H, W] at the sidecar's input size; outputs `logits` float32 [N, classes] with the
  sidecar's class count and `embedding` float32 [N, D] (D as recorded at export); and no
  control flow (`Loop`, `Scan`: an exported classifier has none, and a Loop can run forever);
- the retrieval index must hold embeddings [N, D] (D the graph's), positions [N, 2] that are
  finite points on the globe, and labels [N] that are classes of the model.
After every forward pass the scores and embeddings must be finite with the expected shapes, and
a pass must finish within `inference_timeout_s()`: a NaN is an error, never "nan %".
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from geolocate.errors import UserError
from geolocate.geo import is_position

CONTROL_FLOW = {"Loop", "Scan"}
DEFAULT_TIMEOUT_S = 300.0
_FLOAT = "tensor(float)"


def inference_timeout_s() -> float:
    """Seconds one forward pass may take (`GEOLOCATE_INFERENCE_TIMEOUT_S`, default 300)."""
    try:
        value = float(os.environ.get("GEOLOCATE_INFERENCE_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if 0 < value < float("inf") else DEFAULT_TIMEOUT_S


def check_graph(session, meta: dict, path: Path | str, graph_bytes: bytes) -> None:
    """Refuse a graph whose signature is not the one the sidecar describes (see module docstring).

    `graph_bytes` are the bytes the session was opened from (`path` only names them): the
    operators checked are those of the graph that runs.

    Raises:
        UserError: one line naming what differs.
    """
    problem = signature_problem(session, meta) or control_flow_problem(graph_bytes)
    if problem:
        raise UserError(f"{path} is not this checkpoint's graph: {problem}; export it again with `geolocate export-model`")


def signature_problem(session, meta: dict) -> str | None:
    """What differs between the session's inputs/outputs and the sidecar's model, or None."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != "image" or inputs[0].type != _FLOAT or len(inputs[0].shape) != 4:
        return "expected one input 'image', float32 [N, 3, H, W]"
    side = [int(v) for v in (meta.get("preprocessing") or {}).get("input_size", [])[-2:]]
    if not _dims_match(inputs[0].shape[1:], [3, *side]):
        return f"input 'image' is {_shape(inputs[0].shape)}, the sidecar says [N, 3, {', '.join(map(str, side))}]"
    outputs = {o.name: o for o in session.get_outputs()}
    classes = len(meta.get("classes") or [])
    dim = (meta.get("onnx") or {}).get("embedding_dim")
    for name, width in (("logits", classes), ("embedding", dim)):
        out = outputs.get(name)
        if out is None or out.type != _FLOAT or len(out.shape) != 2 or not isinstance(out.shape[1], int):
            return f"expected an output '{name}', float32 [N, {width or 'D'}]"
        if width is not None and out.shape[1] != width:
            return f"output '{name}' has {out.shape[1]} columns, the sidecar says {width}"
    return None


def control_flow_problem(graph_bytes: bytes) -> str | None:
    """'holds a Loop' when the graph (a subgraph or a model-local function included) has control flow, else None.

    Read by `onnx_ops` from the protobuf bytes: `import onnx` alone costs about a second of a cold predict.
    """
    from geolocate.inference.onnx_ops import NotAnOnnxModel, op_types

    try:
        found = op_types(graph_bytes)
    except NotAnOnnxModel:  # onnxruntime already parsed it; a second reader's doubt is a refusal
        return "it does not parse as an ONNX model"
    flow = sorted(found & CONTROL_FLOW)
    return f"it holds a {flow[0]} (control flow an exported classifier never has)" if flow else None


def check_index(index, meta: dict, dim: int | None = None) -> None:
    """Refuse a retrieval index that cannot belong to this model (see module docstring).

    Raises:
        UserError: one line naming what is wrong.
    """
    problem = index_problem(index, len(meta.get("classes") or []), dim or (meta.get("onnx") or {}).get("embedding_dim"))
    if problem:
        raise UserError(f"retrieval index is unusable: {problem}; evaluate the run again to rebuild it")


def index_problem(index, classes: int, dim: int | None) -> str | None:
    """What is wrong with `index` (shapes, dtypes, positions, labels), or None."""
    emb, latlon, labels = index.embeddings, index.latlon, index.labels
    if emb.ndim != 2 or len(emb) == 0:
        return "it holds no photos"
    if emb.ndim != 2 or emb.dtype.kind != "f" or (dim is not None and emb.shape[1] != dim):
        return f"embeddings are {emb.dtype} {list(emb.shape)}, expected float [N, {dim or 'D'}]"
    if latlon.shape != (len(emb), 2) or latlon.dtype.kind != "f" or labels.shape != (len(emb),) or labels.dtype.kind not in "iu":
        return f"positions {list(latlon.shape)} and labels {list(labels.shape)} do not match {len(emb)} embeddings"
    if not np.isfinite(emb).all():
        return "embeddings are not all finite"
    if not is_position(latlon[:, 0], latlon[:, 1]):
        return "positions are not all finite points on the globe (|lat| <= 90, |lon| <= 180)"
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        return f"labels fall outside the model's {classes} classes"
    return None


def check_outputs(logits: np.ndarray, embeddings: np.ndarray | None, rows: int, classes: int,
                  index=None) -> tuple[np.ndarray, np.ndarray | None]:
    """`(logits, embeddings)` when they have `rows` rows, `classes` columns, are finite and, with a
    retrieval `index`, embeddings as wide as the index's.

    Raises:
        UserError: a wrong shape or a NaN / infinite value (the model is broken, not the photo).
    """
    logits = np.asarray(logits)
    if logits.shape != (rows, classes):
        raise UserError(f"the model answered {list(logits.shape)} scores for {rows} photos and {classes} classes; the graph is not this model's")
    if not np.isfinite(logits).all() or (embeddings is not None and not np.isfinite(embeddings).all()):
        raise UserError("the model's scores are not finite (NaN or infinity): the weights or the graph are broken; "
                        "train or export the model again")
    if embeddings is not None and (np.ndim(embeddings) != 2 or len(embeddings) != rows):
        raise UserError(f"the model answered embeddings of shape {list(np.shape(embeddings))} for {rows} photos; the graph is not this model's")
    if index is not None and embeddings is not None and embeddings.shape[1] != index.embeddings.shape[1]:
        raise UserError(f"the retrieval index holds {index.embeddings.shape[1]}-wide embeddings, the model gives "
                        f"{embeddings.shape[1]}: it is another model's index; evaluate the run again to rebuild it")
    return logits, embeddings


def run_with_deadline(session, feeds: dict, seconds: float | None = None) -> list:
    """`session.run(None, feeds)`, stopped after `seconds` (onnxruntime's terminate flag).

    Raises:
        UserError: the pass took too long, or the graph failed on this input.
    """
    import onnxruntime as ort

    seconds = seconds or inference_timeout_s()
    options = ort.RunOptions()
    options.log_severity_level = 4  # fatal only: the terminate flag's own error line is ours to word
    timer = threading.Timer(seconds, lambda: setattr(options, "terminate", True))
    timer.daemon = True
    timer.start()
    try:
        return session.run(None, feeds, options)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        if options.terminate:
            raise UserError(f"inference did not finish within {seconds:g} s (GEOLOCATE_INFERENCE_TIMEOUT_S); the graph may loop") from None
        raise UserError(f"the graph failed on these photos ({type(exc).__name__}); export it again with `geolocate export-model`") from None
    finally:
        timer.cancel()


def _dims_match(shape, expected) -> bool:
    return len(shape) == len(expected) and all(not isinstance(s, int) or s == e for s, e in zip(shape, expected))


def _shape(shape) -> str:
    return "[" + ", ".join(str(s) if isinstance(s, int) else "N" for s in shape) + "]"
