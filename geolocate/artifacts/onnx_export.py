"""Export a single-view checkpoint to ONNX (`<stem>.onnx`), checked against torch.

The graph takes `image` [B, 3, H, W] (dynamic batch) and outputs `logits` and `embedding` (the
pooled features retrieval needs). It is exported with torch's TorchScript-based exporter
(`dynamo=False`): it handles every registered single-view backbone without the extra
`onnxscript` dependency. Before the graph is kept, onnxruntime and torch run the same fixed
batch: the largest logit difference must stay within `MAX_LOGIT_DIFF` and the top-k cells must
be identical, and the figures go into the sidecar (`onnx`), next to the weights id the graph
belongs to (predict uses a graph only when the ids match).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from geolocate.artifacts.digest import sha256_file
from geolocate.artifacts.resolve import file_of
from geolocate.errors import UserError

MAX_LOGIT_DIFF = 1e-4
PARITY_BATCH = 4
PARITY_TOPK = 5
OPSET = 17


def export_onnx(stem: Path | str, required: bool = True) -> dict | None:
    """Write `<stem>.onnx` for the checkpoint at `stem`, check parity, record it in the sidecar; return the record.

    Args:
        stem: a checkpoint stem (`runs/<id>/best`, `releases/<tag>/model`).
        required: when False, a model that cannot be exported (not a single-view classifier)
            returns None instead of raising.

    Raises:
        UserError: the model has no single-view graph to export (when `required`), or the parity check failed.
    """
    from geolocate.artifacts.checkpoint import load_checkpoint, update_sidecar
    from geolocate.atomic import atomic_path

    from geolocate.artifacts.checkpoint import read_sidecar
    from geolocate.models import list_models

    if not required and read_sidecar(stem)["model"]["name"] not in list_models():
        return None  # not a registry model (a stand-in, a scout-sniper part): nothing to export
    model, meta = load_checkpoint(stem)
    if not hasattr(model, "forward_with_features"):
        if not required:
            return None
        raise UserError(f"checkpoint {stem} ({meta['model']['name']}) is not a single-view classifier; only those export to ONNX")
    batch = _parity_batch(meta["preprocessing"])
    target = file_of(stem, ".onnx")
    with atomic_path(target) as tmp:  # a failed check raises inside: the temporary file goes, nothing replaced
        _export(model, batch, tmp)
        parity = _parity(model, batch, tmp)
        if not parity["passed"]:
            raise UserError(f"ONNX export of {stem} disagrees with torch (max |Δlogit| {parity['max_abs_logit_diff']:.2e}, "
                            f"top-{PARITY_TOPK} identical: {parity['topk_identical']}); graph not kept")
    record = {"file": target.name, "weights_id": meta.get("weights_id"), "opset": OPSET, "parity": parity,
              "bytes": target.stat().st_size, "sha256": sha256_file(target), "embedding_dim": parity.pop("embedding_dim")}
    update_sidecar(stem, lambda sidecar: sidecar.__setitem__("onnx", record))
    return record


def _parity_batch(preprocessing: dict):
    import torch

    side = int(preprocessing["input_size"][-1])
    generator = torch.Generator().manual_seed(0)  # fixed: the same batch every export
    return torch.randn(PARITY_BATCH, 3, side, side, generator=generator)


def _with_features(model):
    """The classifier wrapped so the traced graph returns (logits, embedding)."""
    import torch

    class WithFeatures(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.forward_with_features(x)

    return WithFeatures(model).eval()


def _export(model, batch, path: Path) -> None:
    import torch

    dynamic = {"image": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice and tracer chatter
        torch.onnx.export(_with_features(model), (batch,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["logits", "embedding"], dynamic_axes=dynamic)


def _parity(model, batch, path: Path) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        expected = model.eval()(batch).float().numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, embedding = session.run(["logits", "embedding"], {"image": batch.numpy()})
    diff = float(np.abs(got - expected).max())
    k = min(PARITY_TOPK, expected.shape[1])
    same = bool((np.argsort(-got, 1, kind="stable")[:, :k] == np.argsort(-expected, 1, kind="stable")[:, :k]).all())
    return {"batch": PARITY_BATCH, "max_abs_logit_diff": diff, "topk": k, "topk_identical": same,
            "passed": diff <= MAX_LOGIT_DIFF and same, "embedding_dim": int(embedding.shape[1])}
